// lowbit's CPU matmul: y = x · dequantize(W)ᵀ computed as ggml's mul_mat does it. Each activation row
// is quantized to the weight type's dot type (q8_0 / q8_1 / q8_K; f16 / bf16 rounding; f32 as is),
// then every output is the dot product of a weight row with an activation row (integer block dots
// scaled by the block scales), by the gemm kernel of the chosen ISA.
#pragma once
#include <cstdint>

#include "kernels.h"
#include "types.h"

namespace lowbit {

// How a weight matrix's blocks are stored: GGUF's row-major rows, or rows8 (rows8.h, made at load).
// Both give the same bits.
enum class Layout : int { GGUF = 0, ROWS8 = 1 };

// x: (m, k) f32 C-contiguous; w: (n, row_bytes(t, k)) weight rows of type t (row-major, or rows8 with
// n % 8 == 0); y: (m, n) f32. threads >= 1; isa: the highest ISA to use (must be supported).
// Throws std::invalid_argument("[matmul] ...") for an activation-only type, bad sizes, or NaN / inf in
// x when the dot type is quantized (the quantizers need finite values).
void matmul(const float* x, int64_t m, int64_t k, const void* w, int64_t n, QType t, float* y, int threads, Isa isa,
            Layout layout = Layout::GGUF);

// The {d, s} pairs of GemmArgs::a_ds for one activation row. a: the row in dot type `dot`;
// ds: (k / act_group(dot), 2) f32.
void act_scales_and_sums(QType dot, const void* a, int64_t k, float* ds);

}  // namespace lowbit
