// The generic (scalar reference) kernel table: every slot filled, so dispatch always ends here.
#include "../core/kernels.h"
#include "ref.h"

namespace lowbit {

namespace {
KernelTable make_generic_table() {
    KernelTable t;
    auto set = [&](QType q, quantize_row_fn qf, dequantize_row_fn df) { t.types[static_cast<int>(q)] = {qf, df}; };
    set(QType::F32, ref::quantize_row_f32, ref::dequantize_row_f32);
    set(QType::F16, ref::quantize_row_f16, ref::dequantize_row_f16);
    set(QType::BF16, ref::quantize_row_bf16, ref::dequantize_row_bf16);
    set(QType::Q4_0, ref::quantize_row_q4_0, ref::dequantize_row_q4_0);
    set(QType::Q4_1, ref::quantize_row_q4_1, ref::dequantize_row_q4_1);
    set(QType::Q5_0, ref::quantize_row_q5_0, ref::dequantize_row_q5_0);
    set(QType::Q5_1, ref::quantize_row_q5_1, ref::dequantize_row_q5_1);
    set(QType::Q8_0, ref::quantize_row_q8_0, ref::dequantize_row_q8_0);
    set(QType::Q8_1, ref::quantize_row_q8_1, ref::dequantize_row_q8_1);
    set(QType::Q2_K, ref::quantize_row_q2_k, ref::dequantize_row_q2_k);
    set(QType::Q3_K, ref::quantize_row_q3_k, ref::dequantize_row_q3_k);
    set(QType::Q4_K, ref::quantize_row_q4_k, ref::dequantize_row_q4_k);
    set(QType::Q5_K, ref::quantize_row_q5_k, ref::dequantize_row_q5_k);
    set(QType::Q6_K, ref::quantize_row_q6_k, ref::dequantize_row_q6_k);
    set(QType::Q8_K, ref::quantize_row_q8_k, ref::dequantize_row_q8_k);
    set(QType::IQ4_NL, ref::quantize_row_iq4_nl, ref::dequantize_row_iq4_nl);
    set(QType::IQ4_XS, ref::quantize_row_iq4_xs, ref::dequantize_row_iq4_xs);
    return t;
}
}  // namespace

const KernelTable& kernel_table_generic() {
    // matmul slots are added after the table is built, so edits inside make_generic_table cannot drop them.
    static const KernelTable table = [] {
        KernelTable t = make_generic_table();
        register_matmul_generic(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
