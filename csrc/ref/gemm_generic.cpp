// The generic matmul kernels: every output is the reference vec_dot of one weight row with one
// activation row. Slow and obviously right; the SIMD kernels are tested against it.
#include "../core/kernels.h"
#include "dot.h"

namespace lowbit {

namespace {

template <vec_dot_fn Dot>
void gemm_ref(const GemmArgs& p) {
    const auto* w = static_cast<const uint8_t*>(p.w);
    const auto* a = static_cast<const uint8_t*>(p.a);
    for (int64_t i = 0; i < p.m; ++i)
        for (int64_t j = 0; j < p.n; ++j) p.c[i * p.ldc + j] = Dot(p.k, w + j * p.w_row_bytes, a + i * p.a_row_bytes);
}

template <vec_dot_fn Dot>
void set(KernelTable& t, QType q) {
    t.types[static_cast<int>(q)].vec_dot = Dot;
    t.types[static_cast<int>(q)].gemm = gemm_ref<Dot>;
}

}  // namespace

void register_matmul_generic(KernelTable& t) {
    set<ref::vec_dot_f32>(t, QType::F32);
    set<ref::vec_dot_f16>(t, QType::F16);
    set<ref::vec_dot_bf16>(t, QType::BF16);
    set<ref::vec_dot_q4_0>(t, QType::Q4_0);
    set<ref::vec_dot_q4_1>(t, QType::Q4_1);
    set<ref::vec_dot_q5_0>(t, QType::Q5_0);
    set<ref::vec_dot_q5_1>(t, QType::Q5_1);
    set<ref::vec_dot_q8_0>(t, QType::Q8_0);
    set<ref::vec_dot_q2_k>(t, QType::Q2_K);
    set<ref::vec_dot_q3_k>(t, QType::Q3_K);
    set<ref::vec_dot_q4_k>(t, QType::Q4_K);
    set<ref::vec_dot_q5_k>(t, QType::Q5_K);
    set<ref::vec_dot_q6_k>(t, QType::Q6_K);
    set<ref::vec_dot_iq4_nl>(t, QType::IQ4_NL);
    set<ref::vec_dot_iq4_xs>(t, QType::IQ4_XS);
    // q8_1 and q8_K are activation types: ggml has no dot product with them as weights.
}

}  // namespace lowbit
