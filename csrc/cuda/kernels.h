// The CUDA kernel table: one row per quantization type, the same shape for every type, filled by the
// per-family files (formats_float.cu, formats_legacy.cu, formats_kquant.cu, formats_iq4.cu).
// Host-only header: bindings.cpp (built by the host compiler) includes it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

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
    MatmulFn gemv_mma = nullptr;        // m <= kMmaMaxRows: q8 activations, int8 tensor cores (gemv_mma.cuh);
                                        // only on request (kernel="mma"), sm_80+
    MatmulFn gemv_mma_async = nullptr;  // the same with cp.async staging of the weights (kernel="mma_async")
    GemvHostFn gemv_mma_host = nullptr; // its lane-by-lane host run (host model of the mma)
    MatmulFn gemv_async = nullptr;      // m <= kGemvAsyncMaxRows: the integer GEMV fed by a cp.async pipeline
                                        // (gemv_async.cuh); only on request (kernel="gemv_async")
    MatmulFn gemv_stream = nullptr;     // m <= 16: the integer GEMV with x quantized in shared memory by each
                                        // block and a persistent, software-pipelined grid (gemv_stream.cuh);
                                        // cudaErrorNotSupported when x does not fit (the caller falls back)
    int64_t gemv_stream_auto_rows = 0;  // "auto" takes gemv_stream for m <= this (where it measured fastest)
};

constexpr int64_t kGemvMaxRows = 8;     // fp32 GEMV
constexpr int64_t kGemvQ8MaxRows = 32;  // integer GEMV: weights decoded once serve up to 32 rows
constexpr int64_t kGemvMmaMaxRows = 32; // int8 tensor-core GEMV: 4 column tiles of 8 activation rows
constexpr int64_t kGemvAsyncMaxRows = 8; // cp.async-pipelined integer GEMV (aimed at m = 1)
constexpr int64_t kGemvStreamMaxRows = 16; // gemv_stream: x of up to 16 rows in shared memory

// The row of a type, or nullptr when it has no CUDA kernels (the activation-only q8_1 / q8_K).
//
// Hook for issue 6 (GPTQ / AWQ int4 group formats): a new QType row in the core table, and here a
// family file formats_int4_group.cu with a Format struct (decode16: 16 weights of one row; for the
// integer GEMV also load_unit, like q4_1: scale d, offset m per 32-weight unit, so groups of 32,
// 64 or 128 all work). GPTQ/AWQ checkpoints pack along k in int32 columns with per-group scales and
// zeros in separate tensors: .to("cuda") repacks them once into row-major rows of blocks (scale, zero,
// nibbles) so the kernels see a GGUF-like (n, row_bytes) matrix; nothing else in the dispatch changes.
const FormatKernels* format_kernels(QType type);

constexpr int kTileWeights = 256;  // weights per tile of the tile8 layout: rows need k % 256 == 0

// The "tile8" device layout (tiled.cuh): q4_0, q4_1 and q8_0 rows of k % 256 == 0 with each 8 blocks'
// scales moved ahead of their quants, so quants are 16-byte aligned. .to("cuda") packs it once.
const FormatKernels* format_kernels_tile8(QType type);  // nullptr for other types
// GGUF row bytes <-> tile8 row bytes (the same size); false when the type has no tile8 layout or
// k % 256 != 0. rows: (n, row_bytes) back to back.
bool tile8_pack(QType type, const uint8_t* gguf, uint8_t* tiled, int64_t n, int64_t k);
bool tile8_unpack(QType type, const uint8_t* tiled, uint8_t* gguf, int64_t n, int64_t k);

// GPTQ / AWQ 4-bit group weights on the device (group_int4.cu): lowbit's CPU group layout
// (csrc/core/group_quant.h) with params[row * groups + g] = (scale, zero) and unit_group[u] = the group
// of 32-column chunk u. All pointers device memory (host memory for group_int4_gemv_host).
struct GroupInt4Device {
    const uint8_t* codes;       // (n, row_bytes), row_bytes = kp / 2
    int64_t row_bytes;
    const float2* params;       // (n, groups)
    int64_t groups;
    int64_t units_per_group;    // > 0: chunk u is in group u / units_per_group (every group but the last
                                // has this many chunks, the last no more); 0: look it up in unit_group
    const int32_t* unit_group;  // (kp / 32,)
    const int32_t* xsrc;        // (kp,) source column of x, -1 for padding
    int64_t n, k, kp;           // rows, checkpoint columns, padded columns
};
// y (m, n) = x (m, ldx >= k) @ W^T; any m (m > 16: 16 rows of x per pass over the weights).
cudaError_t group_int4_matmul(const GroupInt4Device& w, const float* x, int64_t ldx, float* y, int64_t m,
                              cudaStream_t stream);
cudaError_t group_int4_dequantize(const GroupInt4Device& w, float* y, cudaStream_t stream);  // -> (n, k) f32
void group_int4_gemv_host(const GroupInt4Device& w, const float* x, float* y, int64_t m);  // x: (m, k)

// Family registration: each fills the rows of its types.
void register_float_formats(FormatKernels* table);   // f32, f16, bf16
void register_legacy_formats(FormatKernels* table);  // q4_0, q4_1, q5_0, q5_1, q8_0
void register_kquant_formats(FormatKernels* table);  // q2_K .. q6_K
void register_iq4_formats(FormatKernels* table);     // iq4_nl, iq4_xs
void register_tile8_formats(FormatKernels* table);   // q4_0, q4_1, q8_0 in the tile8 layout

}  // namespace lowbit::cuda
