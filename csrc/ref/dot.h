// Scalar reference dot products of a weight row with an activation row in the weight type's dot
// type: the spec of lowbit.matmul. Each is written as ggml's generic vec_dot (ggml-cpu/quants.c,
// vec.cpp) with the same accumulation order, so it equals ggml_vec_dot_<t>_generic bit for bit.
// Files: dot_float.cpp (f32, f16, bf16), dot_legacy.cpp (q4_0 .. q8_0), dot_kquants.cpp (q2_K ..
// q6_K), dot_iq4.cpp (iq4_nl, iq4_xs).
#pragma once
#include <cstdint>

namespace lowbit::ref {

// w: one row of k weights in type t; a: one row of k activations in t's dot type.
#define LOWBIT_DECLARE_DOT(t) float vec_dot_##t(int64_t k, const void* w, const void* a);

LOWBIT_DECLARE_DOT(f32)
LOWBIT_DECLARE_DOT(f16)
LOWBIT_DECLARE_DOT(bf16)
LOWBIT_DECLARE_DOT(q4_0)
LOWBIT_DECLARE_DOT(q4_1)
LOWBIT_DECLARE_DOT(q5_0)
LOWBIT_DECLARE_DOT(q5_1)
LOWBIT_DECLARE_DOT(q8_0)
LOWBIT_DECLARE_DOT(q2_k)
LOWBIT_DECLARE_DOT(q3_k)
LOWBIT_DECLARE_DOT(q4_k)
LOWBIT_DECLARE_DOT(q5_k)
LOWBIT_DECLARE_DOT(q6_k)
LOWBIT_DECLARE_DOT(iq4_nl)
LOWBIT_DECLARE_DOT(iq4_xs)

#undef LOWBIT_DECLARE_DOT

}  // namespace lowbit::ref
