// The AVX2 (+FMA, F16C) kernel table. Empty slots fall back to the generic reference.
#include "../../core/kernels.h"
#include "quantize_kquant_avx2.h"

namespace lowbit {

namespace {
KernelTable make_avx2_table() {
    KernelTable t;
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
    static const KernelTable table = make_avx2_table();
    return table;
}

}  // namespace lowbit
