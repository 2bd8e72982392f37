// The AVX2 (+FMA, F16C) kernel table. Empty slots fall back to the generic reference.
// Legacy weight-type quantizers take the plain (no imatrix) path themselves and hand an importance
// matrix to the reference; K-quant quantizers (quantize_kquant_avx2.cpp) run both paths, bit-exact.
// IQ4 quantizers (quantize_iq4_avx2.cpp) run both paths too, bit-exact.
#include "../../core/kernels.h"
#include "avx2.h"
#include "quantize_kquant_avx2.h"
#include "quantize_iq4_avx2.h"

namespace lowbit {

namespace {
KernelTable make_avx2_table() {
    KernelTable t;
    auto set = [&](QType q, quantize_row_fn qf, dequantize_row_fn df) { t.types[static_cast<int>(q)] = {qf, df}; };
    set(QType::F16, avx2::quantize_row_f16, avx2::dequantize_row_f16);
    set(QType::BF16, avx2::quantize_row_bf16, avx2::dequantize_row_bf16);
    set(QType::Q4_0, avx2::quantize_row_q4_0, avx2::dequantize_row_q4_0);
    set(QType::Q4_1, avx2::quantize_row_q4_1, avx2::dequantize_row_q4_1);
    set(QType::Q5_0, avx2::quantize_row_q5_0, avx2::dequantize_row_q5_0);
    set(QType::Q5_1, avx2::quantize_row_q5_1, avx2::dequantize_row_q5_1);
    set(QType::Q8_0, avx2::quantize_row_q8_0, avx2::dequantize_row_q8_0);
    set(QType::Q8_1, avx2::quantize_row_q8_1, avx2::dequantize_row_q8_1);
    set(QType::Q2_K, nullptr, avx2::dequantize_row_q2_k);
    set(QType::Q3_K, nullptr, avx2::dequantize_row_q3_k);
    set(QType::Q4_K, nullptr, avx2::dequantize_row_q4_k);
    set(QType::Q5_K, nullptr, avx2::dequantize_row_q5_k);
    set(QType::Q6_K, nullptr, avx2::dequantize_row_q6_k);
    set(QType::Q8_K, avx2::quantize_row_q8_k, avx2::dequantize_row_q8_k);
    set(QType::IQ4_NL, quantize_row_iq4_nl_avx2, avx2::dequantize_row_iq4_nl);
    set(QType::IQ4_XS, quantize_row_iq4_xs_avx2, avx2::dequantize_row_iq4_xs);
    // K-quant quantizers (quantize_kquant_avx2.cpp): lane-parallel scale searches, bit-exact.
    t.types[static_cast<int>(QType::Q2_K)].quantize_row = quantize_row_q2_k_avx2;
    t.types[static_cast<int>(QType::Q3_K)].quantize_row = quantize_row_q3_k_avx2;
    t.types[static_cast<int>(QType::Q4_K)].quantize_row = quantize_row_q4_k_avx2;
    t.types[static_cast<int>(QType::Q5_K)].quantize_row = quantize_row_q5_k_avx2;
    t.types[static_cast<int>(QType::Q6_K)].quantize_row = quantize_row_q6_k_avx2;
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx2() {
    // matmul slots are added after the table is built, so edits inside make_avx2_table cannot drop them.
    static const KernelTable table = [] {
        KernelTable t = make_avx2_table();
        register_matmul_avx2(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
