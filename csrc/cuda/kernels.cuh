// Kernel templates shared by the format families. A format is a struct with
//   kTypeSize                         bytes per block (the GGUF block struct's size)
//   decode16(row, chunk, k, out)      weights 16*chunk .. 16*chunk+15 of one row as f32 (zero past k)
// (__host__ __device__: the host build backs _cuda.decode_host, the GPU-free test of the decoders).
// Every kernel is written against decode16 alone, so a format costs one small function, and the
// dequantize, GEMV and GEMM paths of all formats share one indexing scheme (16-weight chunks: the
// smallest unit every GGUF format decodes without its neighbours).
#pragma once
#include <cuda_fp16.h>
#include <mma.h>

#include "common.cuh"
#include "kernels.h"

namespace lowbit::cuda {

// ---- dequantize: one thread per 16-weight chunk, grid-stride over (row, chunk) ----
template <class F>
__global__ void dequantize_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, float* __restrict__ y,
                                  int64_t rows, int64_t k) {
    const int64_t chunks = (k + 15) / 16;
    const int64_t total = rows * chunks;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t row = i / chunks, c = i % chunks;
        float v[16];
        F::decode16(w + row * row_bytes, c, k, v);
        float* out = y + row * k + c * 16;
#pragma unroll
        for (int q = 0; q < 16; ++q)
            if (c * 16 + q < k) out[q] = v[q];
    }
}

template <class F>
cudaError_t dequantize_launch(const uint8_t* w, int64_t row_bytes, float* y, int64_t rows, int64_t k,
                              cudaStream_t stream) {
    const int64_t total = rows * ((k + 15) / 16);
    if (total == 0) return cudaSuccess;
    const int threads = 256;
    const int64_t blocks = (total + threads - 1) / threads;
    dequantize_kernel<F><<<unsigned(blocks < (1 << 20) ? blocks : (1 << 20)), threads, 0, stream>>>(w, row_bytes, y,
                                                                                                      rows, k);
    return cudaGetLastError();
}

// ---- GEMV (m <= 8): one warp per weight row, lanes stride over 16-weight chunks ----
// Decode bound by memory bandwidth: each weight byte is read once; the activations (m rows of k f32)
// are shared by every warp and stay in L1/L2. M is the compiled row capacity, m <= M the live rows.
constexpr int kGemvWarps = 4;  // rows per thread block

template <class F, int M>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const float* __restrict__ x, int64_t ldx,
                float* __restrict__ y, int m, int64_t n, int64_t k) {
    const int lane = threadIdx.x & 31;
    const int64_t row = int64_t(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
    if (row >= n) return;  // the whole warp leaves together: the shuffles below see full warps
    const uint8_t* wrow = w + row * row_bytes;
    const int64_t chunks = (k + 15) / 16;
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] = 0.f;
    for (int64_t c = lane; c < chunks; c += 32) {
        float wv[16];
        F::decode16(wrow, c, k, wv);
#pragma unroll
        for (int i = 0; i < M; ++i) {
            if (i < m) {
                const float4* xv = reinterpret_cast<const float4*>(x + i * ldx + c * 16);
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const float4 v = __ldg(xv + q);
                    acc[i] += wv[4 * q] * v.x + wv[4 * q + 1] * v.y + wv[4 * q + 2] * v.z + wv[4 * q + 3] * v.w;
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < M; ++i) {
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], offset);
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < M; ++i)
            if (i < m) y[i * n + row] = acc[i];
    }
}

template <class F>
cudaError_t gemv_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                        int64_t n, int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvMaxRows) return cudaErrorInvalidValue;
    const int64_t blocks = (n + kGemvWarps - 1) / kGemvWarps;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    const dim3 grid{unsigned(blocks), 1, 1};
    const dim3 block{unsigned(kGemvWarps * 32), 1, 1};
    const int mi = int(m);
    if (m == 1) gemv_kernel<F, 1><<<grid, block, 0, stream>>>(w, row_bytes, x, ldx, y, mi, n, k);
    else if (m == 2) gemv_kernel<F, 2><<<grid, block, 0, stream>>>(w, row_bytes, x, ldx, y, mi, n, k);
    else if (m <= 4) gemv_kernel<F, 4><<<grid, block, 0, stream>>>(w, row_bytes, x, ldx, y, mi, n, k);
    else gemv_kernel<F, 8><<<grid, block, 0, stream>>>(w, row_bytes, x, ldx, y, mi, n, k);
    return cudaGetLastError();
}

// ---- GEMM (any m): 64x64 output tiles on tensor cores ----
// Per k-step of 32: the x tile (64 x 32) and the weight tile (64 rows x 32, decoded from the blocks)
// are written to shared memory as fp16, then four warps each multiply a 32x32 quarter with wmma
// 16x16x16 fragments accumulating in fp32. fp16 activations: |x| beyond 65504 overflows, as in
// llama.cpp's cuBLAS fp16 path. Not yet double-buffered (cp.async): see the README's CUDA section.
constexpr int kTileM = 64, kTileN = 64, kTileK = 32;
constexpr int kTilePadK = kTileK + 8;   // row pitch in halves: a multiple of 8 (wmma ldm), skews banks
constexpr int kTilePadN = kTileN + 4;   // f32 pitch of the epilogue tile: a multiple of 4 (wmma ldm)

template <class F>
__global__ void __launch_bounds__(128)
    gemm_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const float* __restrict__ x, int64_t ldx,
                float* __restrict__ y, int64_t m, int64_t n, int64_t k) {
    using namespace nvcuda;
    __shared__ __align__(32) __half x_tile[kTileM][kTilePadK];  // (m rows, k)
    __shared__ __align__(32) __half w_tile[kTileN][kTilePadK];  // (n rows, k): B = W^T column-major
    __shared__ __align__(32) float y_tile[kTileM][kTilePadN];

    const int t = threadIdx.x, warp = t / 32;
    const int64_t m0 = int64_t(blockIdx.y) * kTileM, n0 = int64_t(blockIdx.x) * kTileN;
    const int warp_m = (warp / 2) * 32, warp_n = (warp % 2) * 32;
    const int tile_row = t / 2, tile_col = (t & 1) * 16;  // this thread's 16 values of each tile
    const int64_t chunks = (k + 15) / 16;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

    for (int64_t k0 = 0; k0 < k; k0 += kTileK) {
        const int64_t kc = k0 + tile_col;  // first column of this thread's 16
        {
            const int64_t xr = m0 + tile_row;
            float v[16];
            if (xr < m && kc < ldx) {
                const float4* xv = reinterpret_cast<const float4*>(x + xr * ldx + kc);
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const float4 f = __ldg(xv + q);
                    v[4 * q] = f.x; v[4 * q + 1] = f.y; v[4 * q + 2] = f.z; v[4 * q + 3] = f.w;
                }
            } else {
#pragma unroll
                for (int q = 0; q < 16; ++q) v[q] = 0.f;
            }
#pragma unroll
            for (int q = 0; q < 16; ++q) x_tile[tile_row][tile_col + q] = __float2half_rn(v[q]);
        }
        {
            const int64_t wr = n0 + tile_row;
            const int64_t c = kc / 16;
            float v[16];
            if (wr < n && c < chunks) {
                F::decode16(w + wr * row_bytes, c, k, v);
            } else {
#pragma unroll
                for (int q = 0; q < 16; ++q) v[q] = 0.f;
            }
#pragma unroll
            for (int q = 0; q < 16; ++q) w_tile[tile_row][tile_col + q] = __float2half_rn(v[q]);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kTileK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &x_tile[warp_m + 16 * i][kk], kTilePadK);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &w_tile[warp_n + 16 * j][kk], kTilePadK);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&y_tile[warp_m + 16 * i][warp_n + 16 * j], acc[i][j], kTilePadN,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int idx = t; idx < kTileM * kTileN; idx += 128) {
        const int r = idx / kTileN, col = idx % kTileN;
        if (m0 + r < m && n0 + col < n) y[(m0 + r) * n + n0 + col] = y_tile[r][col];
    }
}

template <class F>
cudaError_t gemm_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                        int64_t n, int64_t k, cudaStream_t stream) {
    const int64_t grid_n = (n + kTileN - 1) / kTileN, grid_m = (m + kTileM - 1) / kTileM;
    if (grid_n > 0x7fffffff || grid_m > 65535) return cudaErrorInvalidValue;
    gemm_kernel<F><<<dim3(unsigned(grid_n), unsigned(grid_m)), 128, 0, stream>>>(w, row_bytes, x, ldx, y, m, n, k);
    return cudaGetLastError();
}

template <class F>
void decode_row_host(const uint8_t* row, int64_t k, float* out) {
    for (int64_t c = 0; c * 16 < k; ++c) {
        float v[16];
        F::decode16(row, c, k, v);
        for (int q = 0; q < 16 && c * 16 + q < k; ++q) out[c * 16 + q] = v[q];
    }
}

template <class F>
FormatKernels make_format_kernels() {
    FormatKernels fk;
    fk.dequantize = dequantize_launch<F>;
    fk.gemv = gemv_launch<F>;
    fk.gemv_max_rows = kGemvMaxRows;
    fk.gemv_f32 = gemv_launch<F>;
    fk.gemm = gemm_launch<F>;
    fk.decode_host = decode_row_host<F>;
    return fk;
}

}  // namespace lowbit::cuda
