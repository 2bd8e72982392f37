// The CUDA kernel table: one row per quantization type, the same shape for every type, filled by the
// per-family files (formats_float.cu, formats_legacy.cu, formats_kquant.cu, formats_iq4.cu).
// Host-only header: bindings.cpp (built by the host compiler) includes it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/types.h"

namespace lowbit::cuda {

// Every pointer is device memory. w: (n, row_bytes) GGUF bytes, rows back to back.
// x: (m, ldx) f32, 16-byte aligned, ldx a multiple of 16 and >= k, zero in columns k..ldx-1.
// y: (m, n) f32 row-major. Each launcher only enqueues on `stream` and returns the launch status.
using DequantizeFn = cudaError_t (*)(const uint8_t* w, int64_t row_bytes, float* y, int64_t rows, int64_t k,
                                     cudaStream_t stream);
// Host-side run of the format's decoder (the code the kernels use): row -> out (k,) f32.
using DecodeHostFn = void (*)(const uint8_t* row, int64_t k, float* out);
// Host run of the integer GEMV's numerics (activation quantization + load_unit + dot_unit): x (m, k) -> y (m, n).
using GemvHostFn = void (*)(const uint8_t* w, int64_t row_bytes, const float* x, float* y, int64_t m, int64_t n,
                            int64_t k);
using MatmulFn = cudaError_t (*)(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y,
                                 int64_t m, int64_t n, int64_t k, cudaStream_t stream);

struct FormatKernels {
    DequantizeFn dequantize = nullptr;  // -> (rows, k) f32, values identical to the CPU reference
    MatmulFn gemv = nullptr;            // m <= gemv_max_rows: gemv_q8 where the format has one, else gemv_f32
    int64_t gemv_max_rows = 0;          // the largest m `gemv` takes (auto dispatch: GEMM above)
    MatmulFn gemv_f32 = nullptr;        // m <= kGemvMaxRows: fp32 activations, weights decoded in registers
    MatmulFn gemv_unstaged = nullptr;   // the integer GEMV without shared-memory staging (for comparison)
    MatmulFn gemm = nullptr;            // any m: fp16 tensor-core tiles (wmma 16x16x16), fp32 accumulation
    DecodeHostFn decode_host = nullptr; // for tests without a GPU
    GemvHostFn gemv_q8_host = nullptr;  // set with the integer GEMV (gemv_q8.cuh): q8 activations, dp4a
};

constexpr int64_t kGemvMaxRows = 8;     // fp32 GEMV
constexpr int64_t kGemvQ8MaxRows = 32;  // integer GEMV: weights decoded once serve up to 32 rows

// The row of a type, or nullptr when it has no CUDA kernels (the activation-only q8_1 / q8_K).
//
// Hook for issue 6 (GPTQ / AWQ int4 group formats): a new QType row in the core table, and here a
// family file formats_int4_group.cu with a Format struct (decode16: 16 weights of one row; for the
// integer GEMV also load_unit, like q4_1: scale d, offset m per 32-weight unit, so groups of 32,
// 64 or 128 all work). GPTQ/AWQ checkpoints pack along k in int32 columns with per-group scales and
// zeros in separate tensors: .to("cuda") repacks them once into row-major rows of blocks (scale, zero,
// nibbles) so the kernels see a GGUF-like (n, row_bytes) matrix; nothing else in the dispatch changes.
const FormatKernels* format_kernels(QType type);

// Family registration: each fills the rows of its types.
void register_float_formats(FormatKernels* table);   // f32, f16, bf16
void register_legacy_formats(FormatKernels* table);  // q4_0, q4_1, q5_0, q5_1, q8_0
void register_kquant_formats(FormatKernels* table);  // q2_K .. q6_K
void register_iq4_formats(FormatKernels* table);     // iq4_nl, iq4_xs

}  // namespace lowbit::cuda
