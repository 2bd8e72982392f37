// The AVX-512 (F, BW, VL, DQ) kernel table. Empty slots fall back to AVX2, then generic.
#include "../../core/kernels.h"
#include "avx512.h"
#include "quantize_kquant_avx512.h"
#include "quantize_iq4_avx512.h"

namespace lowbit {

namespace {
KernelTable make_avx512_table() {
    KernelTable t;
    auto set = [&](QType q, quantize_row_fn qf, dequantize_row_fn df) { t.types[static_cast<int>(q)] = {qf, df}; };
    set(QType::Q4_0, nullptr, avx512::dequantize_row_q4_0);
    set(QType::Q8_0, avx512::quantize_row_q8_0, avx512::dequantize_row_q8_0);
    set(QType::Q4_K, nullptr, avx512::dequantize_row_q4_k);
    set(QType::Q6_K, nullptr, avx512::dequantize_row_q6_k);
    set(QType::Q8_K, avx512::quantize_row_q8_k, nullptr);
    // K-quant quantizers (quantize_kquant_avx512.cpp): lane-parallel scale searches, bit-exact.
    t.types[static_cast<int>(QType::Q2_K)].quantize_row = quantize_row_q2_k_avx512;
    t.types[static_cast<int>(QType::Q3_K)].quantize_row = quantize_row_q3_k_avx512;
    t.types[static_cast<int>(QType::Q4_K)].quantize_row = quantize_row_q4_k_avx512;
    t.types[static_cast<int>(QType::Q5_K)].quantize_row = quantize_row_q5_k_avx512;
    t.types[static_cast<int>(QType::Q6_K)].quantize_row = quantize_row_q6_k_avx512;
    t.types[static_cast<int>(QType::IQ4_NL)].quantize_row = quantize_row_iq4_nl_avx512;  // quantize_iq4_avx512.cpp
    t.types[static_cast<int>(QType::IQ4_XS)].quantize_row = quantize_row_iq4_xs_avx512;
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx512() {
    // matmul slots are added after the table is built, so edits inside make_avx512_table cannot drop them.
    static const KernelTable table = [] {
        KernelTable t = make_avx512_table();
        register_matmul_avx512(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
