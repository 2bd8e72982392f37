// The AVX-512 (F, BW, VL, DQ) kernel table. Empty slots fall back to AVX2, then generic.
#include "../../core/kernels.h"
#include "quantize_kquant_avx512.h"

namespace lowbit {

namespace {
KernelTable make_avx512_table() {
    KernelTable t;
    // K-quant quantizers (quantize_kquant_avx512.cpp): lane-parallel scale searches, bit-exact.
    t.types[static_cast<int>(QType::Q2_K)].quantize_row = quantize_row_q2_k_avx512;
    t.types[static_cast<int>(QType::Q3_K)].quantize_row = quantize_row_q3_k_avx512;
    t.types[static_cast<int>(QType::Q4_K)].quantize_row = quantize_row_q4_k_avx512;
    t.types[static_cast<int>(QType::Q5_K)].quantize_row = quantize_row_q5_k_avx512;
    t.types[static_cast<int>(QType::Q6_K)].quantize_row = quantize_row_q6_k_avx512;
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx512() {
    static const KernelTable table = make_avx512_table();
    return table;
}

}  // namespace lowbit
