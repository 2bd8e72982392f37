// Integer GEMV with an asynchronous copy pipeline, kernel "gemv_async" (m <= 8; opt-in): the gemv_q8
// numerics (the same load_unit / dot_unit per 32-weight unit, so gemv_q8_host is its host reference),
// but a warp streams its weight row through a ring of kAsyncStages shared-memory spans with cp.async
// (16-byte, coalesced: consecutive lanes copy consecutive 16 bytes). Up to kAsyncStages - 1 spans of
// every warp are in flight while it decodes the current one: more bytes in flight than the direct
// kernel (whose 2-byte loads of 18/20/34-byte blocks also cost one L1 wavefront per few bytes) and no
// load -> store -> barrier round trip per span as in the staged kernel.
//
// One weight row per warp (all m activation rows share its decode). Needs rows of 16-byte multiples at
// a 16-byte aligned address (typical k: q4_0 k % 256 == 0, q8_0 k % 256 == 0); otherwise the launcher
// runs the direct-load kernel (the same numerics).
#pragma once
#include <cuda_pipeline.h>

#include "gemv_q8.cuh"

namespace lowbit::cuda {

constexpr int kAsyncWarps = 4;   // warps (rows) per block
constexpr int kAsyncStages = 4;  // spans of 32 units per warp in shared memory

template <class F, int M>
__global__ void __launch_bounds__(kAsyncWarps * 32)
    gemv_async_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const int8_t* __restrict__ xq,
                      const float2* __restrict__ xds, float* __restrict__ y, int m, int64_t n, int64_t k) {
    constexpr int kSpan = F::kSpanBytes;  // bytes of 32 consecutive units of a row
    static_assert(kSpan % 16 == 0, "spans are copied in 16-byte pieces");
    __shared__ __align__(16) uint8_t ring[kAsyncWarps][kAsyncStages][kSpan];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t row = int64_t(blockIdx.x) * kAsyncWarps + warp;
    if (row >= n) return;  // whole warps leave together
    const uint8_t* src = w + row * row_bytes;
    const int64_t units = k / 32;
    const int64_t spans = (units + 31) / 32;
    // Span s -> stage s % kAsyncStages. Every call commits one group (empty past the end), so "group s
    // is complete" is always "at most kAsyncStages - 1 groups pending" after issuing s + stages - 1.
    auto issue = [&](int64_t s) {
        if (s < spans) {
            const int64_t offset = s * kSpan;
            const int64_t pieces = min(int64_t(kSpan), row_bytes - offset) / 16;  // row_bytes % 16 == 0
            uint8_t* dst = ring[warp][s % kAsyncStages];
            for (int64_t c = lane; c < pieces; c += 32) __pipeline_memcpy_async(dst + 16 * c, src + offset + 16 * c, 16);
        }
        __pipeline_commit();
    };
#pragma unroll
    for (int s = 0; s < kAsyncStages - 1; ++s) issue(s);
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] = 0.f;
    for (int64_t s = 0; s < spans; ++s) {
        // stage (s - 1) % stages: every lane finished reading it (the __syncwarp ending iteration s - 1)
        issue(s + kAsyncStages - 1);
        __pipeline_wait_prior(kAsyncStages - 1);  // this lane's copies of span s have landed
        __syncwarp();                             // ... and every other lane's, visible to all
        const int64_t u = s * 32 + lane;
        if (u < units) {
            Unit32 wu;
            F::load_unit(ring[warp][s % kAsyncStages], lane, wu);
#pragma unroll
            for (int i = 0; i < M; ++i) {
                if (i < m) {
                    const int4* xv = reinterpret_cast<const int4*>(xq + i * k + 32 * u);  // 16-byte aligned
                    const int4 a = __ldg(xv), b = __ldg(xv + 1);
                    const int words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                    const float2 ds = __ldg(xds + i * units + u);
                    acc[i] += dot_unit<F::kTwoScales>(wu, words, ds.x, ds.y);
                }
            }
        }
        __syncwarp();  // the stage is refilled by the next iteration's issue
    }
    __pipeline_wait_prior(0);  // no copy outlives the kernel's shared memory
#pragma unroll
    for (int i = 0; i < M; ++i)
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], offset);
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < M; ++i)
            if (i < m) y[i * n + row] = acc[i];
    }
}

template <class F, int M>
cudaError_t gemv_async_kernel_launch(const uint8_t* w, int64_t row_bytes, const int8_t* xq, const float2* xds,
                                     float* y, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
    const int64_t blocks = (n + kAsyncWarps - 1) / kAsyncWarps;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    gemv_async_kernel<F, M><<<unsigned(blocks), kAsyncWarps * 32, 0, stream>>>(w, row_bytes, xq, xds, y, int(m), n, k);
    return cudaGetLastError();
}

template <class F>
cudaError_t gemv_async_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                              int64_t n, int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvAsyncMaxRows || k % 32) return cudaErrorInvalidValue;
    if (row_bytes % 16 != 0 || reinterpret_cast<uintptr_t>(w) % 16 != 0)
        return gemv_q8_launch<F, false>(w, row_bytes, x, ldx, y, m, n, k, stream);  // direct loads
    return with_quantized_x(x, ldx, m, k, stream, [&](const int8_t* xq, const float2* xds) {
        if (m == 1) return gemv_async_kernel_launch<F, 1>(w, row_bytes, xq, xds, y, m, n, k, stream);
        if (m == 2) return gemv_async_kernel_launch<F, 2>(w, row_bytes, xq, xds, y, m, n, k, stream);
        if (m <= 4) return gemv_async_kernel_launch<F, 4>(w, row_bytes, xq, xds, y, m, n, k, stream);
        return gemv_async_kernel_launch<F, 8>(w, row_bytes, xq, xds, y, m, n, k, stream);
    });
}

// Adds kernel="gemv_async" (never the default) to a format's row; formats whose spans are 16-byte multiples.
template <class F>
FormatKernels with_gemv_async(FormatKernels fk) {
    fk.gemv_async = gemv_async_launch<F>;
    return fk;
}

}  // namespace lowbit::cuda
