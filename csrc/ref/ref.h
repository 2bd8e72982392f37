// Scalar reference kernels: the spec. Compiled with -ffp-contract=off so every multiply and add
// rounds exactly where ggml's reference C does; the bytes must equal ggml_quantize_chunk's.
// One file per format: csrc/ref/<type>.cpp holds quantize_row_<type> and dequantize_row_<type>.
#pragma once
#include <cstdint>

namespace lowbit::ref {

// x: (k,) f32; y: the row's blocks; imatrix: (k,) or nullptr (then the plain reference rounding,
// exactly what ggml does when no importance matrix is given).
#define LOWBIT_DECLARE_REF(t)                                                          \
    void quantize_row_##t(const float* x, void* y, int64_t k, const float* imatrix);   \
    void dequantize_row_##t(const void* x, float* y, int64_t k);

LOWBIT_DECLARE_REF(f32)
LOWBIT_DECLARE_REF(f16)
LOWBIT_DECLARE_REF(bf16)
LOWBIT_DECLARE_REF(q4_0)
LOWBIT_DECLARE_REF(q4_1)
LOWBIT_DECLARE_REF(q5_0)
LOWBIT_DECLARE_REF(q5_1)
LOWBIT_DECLARE_REF(q8_0)
LOWBIT_DECLARE_REF(q8_1)
LOWBIT_DECLARE_REF(q2_k)
LOWBIT_DECLARE_REF(q3_k)
LOWBIT_DECLARE_REF(q4_k)
LOWBIT_DECLARE_REF(q5_k)
LOWBIT_DECLARE_REF(q6_k)
LOWBIT_DECLARE_REF(q8_k)
LOWBIT_DECLARE_REF(iq4_nl)
LOWBIT_DECLARE_REF(iq4_xs)

#undef LOWBIT_DECLARE_REF

// The q8_0 / q8_1 activation quantizers of ggml's CPU mul_mat (see act_q8.cpp): what lowbit.matmul
// quantizes activations with, so its int8 activations equal llama.cpp's.
void quantize_act_row_q8_0(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_act_row_q8_1(const float* x, void* y, int64_t k, const float* imatrix);

// ggml's soft_max rows (s: (rows, n), rows [begin, end), entries from valid[r] on are masked) and SiLU.
void ggml_softmax_rows(float* s, int64_t begin, int64_t end, int64_t n, const int64_t* valid, bool v512,
                       bool round_f16);
void ggml_silu(const float* x, float* y, int64_t n, bool v512);

}  // namespace lowbit::ref
