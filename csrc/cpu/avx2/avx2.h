// AVX2 (+FMA, F16C) kernels: one file per format, csrc/cpu/avx2/<type>.cpp. Each produces exactly
// the reference's bytes / float bits (see csrc/ref/): same operations, same order, same rounding.
// Quantizers with an importance-weighted path hand imatrix != nullptr to the reference.
#pragma once
#include <cstdint>

namespace lowbit::avx2 {

#define LOWBIT_DECLARE_AVX2_Q(t) void quantize_row_##t(const float* x, void* y, int64_t k, const float* imatrix);
#define LOWBIT_DECLARE_AVX2_D(t) void dequantize_row_##t(const void* x, float* y, int64_t k);

LOWBIT_DECLARE_AVX2_Q(f16)
LOWBIT_DECLARE_AVX2_Q(bf16)
LOWBIT_DECLARE_AVX2_Q(q4_0)
LOWBIT_DECLARE_AVX2_Q(q4_1)
LOWBIT_DECLARE_AVX2_Q(q5_0)
LOWBIT_DECLARE_AVX2_Q(q5_1)
LOWBIT_DECLARE_AVX2_Q(q8_0)
LOWBIT_DECLARE_AVX2_Q(q8_1)
LOWBIT_DECLARE_AVX2_Q(q8_k)

LOWBIT_DECLARE_AVX2_D(f16)
LOWBIT_DECLARE_AVX2_D(bf16)
LOWBIT_DECLARE_AVX2_D(q4_0)
LOWBIT_DECLARE_AVX2_D(q4_1)
LOWBIT_DECLARE_AVX2_D(q5_0)
LOWBIT_DECLARE_AVX2_D(q5_1)
LOWBIT_DECLARE_AVX2_D(q8_0)
LOWBIT_DECLARE_AVX2_D(q8_1)
LOWBIT_DECLARE_AVX2_D(q2_k)
LOWBIT_DECLARE_AVX2_D(q3_k)
LOWBIT_DECLARE_AVX2_D(q4_k)
LOWBIT_DECLARE_AVX2_D(q5_k)
LOWBIT_DECLARE_AVX2_D(q6_k)
LOWBIT_DECLARE_AVX2_D(q8_k)
LOWBIT_DECLARE_AVX2_D(iq4_nl)
LOWBIT_DECLARE_AVX2_D(iq4_xs)

#undef LOWBIT_DECLARE_AVX2_Q
#undef LOWBIT_DECLARE_AVX2_D

// ggml's soft_max rows and SiLU (csrc/core/ggml_math.h compiled with FMA).
void ggml_softmax_rows(float* s, int64_t begin, int64_t end, int64_t n, const int64_t* valid, bool v512,
                       bool round_f16);
void ggml_silu(const float* x, float* y, int64_t n, bool v512);

}  // namespace lowbit::avx2
