// The AVX-512 (F, BW, VL, DQ) kernel table. Empty slots fall back to AVX2, then generic.
#include "../../core/kernels.h"
#include "avx512.h"

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
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx512() {
    static const KernelTable table = make_avx512_table();
    return table;
}

}  // namespace lowbit
