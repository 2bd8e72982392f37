// Integer GEMV (m <= 32) for the formats that define load_unit: activations are quantized on the device
// to 8 bits per value in blocks of 32 (scale d = amax/127 and s = d * sum(q), the q8_1 recipe), and
// each 32-weight unit of a weight row meets its activation block in eight dp4a (4 x int8 products
// summed into int32). Decoding with dp4a costs ~1 instruction per weight byte, where the fp32 path
// (kernels.cuh) spends several per weight: at batch 1 that difference decides whether the kernel is
// bound by memory bandwidth or by instruction issue.
//
// A format's load_unit(row, u, unit) decodes the 32 weights of unit u of a row into a Unit32 (once,
// then reused for every activation row); dot_unit gives sum_j w[32u + j] * x[32u + j] from it and an
// activation block (xq: 8 int32 words = 32 int8; dx, sx). Everything here is __host__ __device__ so
// the host build (gemv_q8_host) checks the numerics without a GPU.
#pragma once
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels.cuh"

namespace lowbit::cuda {

// dp4a and per-byte subtract, with host versions for gemv_q8_host
LOWBIT_HD int dp4a(int a, int b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; ++i) c += int(int8_t(uint32_t(a) >> (8 * i))) * int(int8_t(uint32_t(b) >> (8 * i)));
    return c;
#endif
}

LOWBIT_HD uint32_t bytes_minus_32(uint32_t v) {  // each byte in 0..63 -> byte - 32 as int8
#ifdef __CUDA_ARCH__
    return __vsub4(v, 0x20202020u);
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= uint32_t(uint8_t(((v >> (8 * i)) & 0xFF) - 32)) << (8 * i);
    return r;
#endif
}

LOWBIT_HD int round_to_int(float v) {
#ifdef __CUDA_ARCH__
    return __float2int_rn(v);
#else
    return int(std::nearbyint(v));  // the default rounding mode: to nearest even, as __float2int_rn
#endif
}

// 4 bytes at p (2-byte aligned: GGUF block fields) as one little-endian word.
LOWBIT_HD uint32_t load_u32_a2(const uint8_t* p) {
    return uint32_t(load_u16(p)) | uint32_t(load_u16(p + 2)) << 16;
}

// 32 bytes at p (16-byte aligned) as 8 little-endian words: two 16-byte loads on the device.
LOWBIT_HD void load_32_bytes_a16(const uint8_t* p, uint32_t* words) {
#ifdef __CUDA_ARCH__
    const uint4 a = reinterpret_cast<const uint4*>(p)[0], b = reinterpret_cast<const uint4*>(p)[1];
    words[0] = a.x; words[1] = a.y; words[2] = a.z; words[3] = a.w;
    words[4] = b.x; words[5] = b.y; words[6] = b.z; words[7] = b.w;
#else
    memcpy(words, p, 32);
#endif
}

// 32 weights decoded for dp4a: word w[i] holds the 4 int8 weights that meet activation word xw[i].
// sum_j w_j x_j = dx * scale * sum(w xq) + offset * sx (kTwoScales: scale for words 0-3, scale2 for 4-7).
struct Unit32 {
    int w[8];
    float scale;
    float scale2;
    float offset;
};

template <bool kTwoScales>
LOWBIT_HD float dot_unit(const Unit32& u, const int* xw, float dx, float sx) {
    if constexpr (kTwoScales) {
        int s0 = 0, s1 = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) s0 = dp4a(u.w[i], xw[i], s0);
#pragma unroll
        for (int i = 4; i < 8; ++i) s1 = dp4a(u.w[i], xw[i], s1);
        return dx * (u.scale * float(s0) + u.scale2 * float(s1)) + u.offset * sx;
    } else {
        int s = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = dp4a(u.w[i], xw[i], s);
        return u.scale * (dx * float(s)) + u.offset * sx;
    }
}

// One activation block: x (32,) f32 -> q (32,) int8 and ds = (d, d * sum(q)).
LOWBIT_HD void quantize_x_block32(const float* x, int8_t* q, float2* ds) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        const int v = round_to_int(x[j] * id);
        q[j] = int8_t(v);
        sum += v;
    }
    *ds = make_float2(d, d * float(sum));
}

// x: (m, ldx) f32 -> xq: (m, k) int8, xds: (m, k/32) float2. One warp per block of 32 (lane j holds
// x[j]; amax and the sum by shuffles: coalesced, and the same values as quantize_x_block32). static:
// each format file that includes this header gets its own copy.
static __global__ void quantize_x_kernel(const float* __restrict__ x, int64_t ldx, int8_t* __restrict__ xq,
                                         float2* __restrict__ xds, int64_t m, int64_t k) {
    const int64_t blocks_per_row = k / 32;
    const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;  // the same for the whole warp
    const int lane = threadIdx.x & 31;
    if (i >= m * blocks_per_row) return;
    const int64_t r = i / blocks_per_row, b = i % blocks_per_row;
    const float v = x[r * ldx + 32 * b + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    const int q = round_to_int(v * id);
    xq[r * k + 32 * b + lane] = int8_t(q);
    int sum = q;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) xds[i] = make_float2(d, d * float(sum));
}

constexpr int kGemvQ8Warps = 4;  // warps per thread block

// Weight rows per warp: every activation word a lane loads serves R rows (at m = 16 the activation
// loads, not the weights, would otherwise fill the L1 pipe); R = 1 at m <= 2 keeps more warps in flight,
// R = 2 at m = 32 keeps the accumulators (M x R) in registers.
template <int M>
__host__ __device__ constexpr int gemv_rows_per_warp() { return M <= 2 ? 1 : M <= 4 ? 2 : M <= 16 ? 4 : 2; }

// kStaged: each warp first copies the next 32 units of its rows into shared memory with coalesced
// 16-byte (q6_K: 8-byte) loads, then every lane decodes its unit from there. GGUF blocks of 18, 20, 34
// or 210 bytes leave the fields of one block 2-byte aligned, so decoding straight from global memory
// takes many narrow loads, each touching several cache sectors across the warp; staging reads every
// byte once at full width. Needs rows aligned to the copy width (the launcher checks; typical k are).
template <class F, int M, bool kStaged>
__global__ void __launch_bounds__(kGemvQ8Warps * 32)
    gemv_q8_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const int8_t* __restrict__ xq,
                   const float2* __restrict__ xds, float* __restrict__ y, int m, int64_t n, int64_t k) {
    constexpr int R = gemv_rows_per_warp<M>();
    constexpr int kSpan = F::kSpanBytes;  // bytes of 32 consecutive units of a row
    constexpr int kGrain = kSpan % 16 == 0 ? 16 : 8;
    static_assert(kSpan % 8 == 0, "spans are copied in 8- or 16-byte words");
    __shared__ __align__(16) uint8_t staged[kStaged ? kGemvQ8Warps * R : 1][kStaged ? kSpan : 16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t row0 = (int64_t(blockIdx.x) * kGemvQ8Warps + warp) * R;
    if (row0 >= n) return;  // whole warps leave together: the shuffles and __syncwarp see full warps
    const int64_t units = k / 32;
    float acc[M][R];
#pragma unroll
    for (int i = 0; i < M; ++i)
#pragma unroll
        for (int r = 0; r < R; ++r) acc[i][r] = 0.f;
    for (int64_t u0 = 0; u0 < units; u0 += 32) {
        const int64_t u = u0 + lane;
        Unit32 wu[R];
        if constexpr (kStaged) {
            const int64_t span_offset = u0 / 32 * kSpan;  // bytes into the row; a multiple of kGrain
            const int64_t span_bytes = min(int64_t(kSpan), row_bytes - span_offset);  // likewise
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (row0 + r < n) {
                    const uint8_t* src = w + (row0 + r) * row_bytes + span_offset;
                    uint8_t* dst = staged[warp * R + r];
                    for (int64_t c = lane; c < span_bytes / kGrain; c += 32) {
                        if constexpr (kGrain == 16)
                            reinterpret_cast<uint4*>(dst)[c] = __ldg(reinterpret_cast<const uint4*>(src) + c);
                        else
                            reinterpret_cast<uint2*>(dst)[c] = __ldg(reinterpret_cast<const uint2*>(src) + c);
                    }
                }
            }
            __syncwarp();
            if (u < units) {
#pragma unroll
                for (int r = 0; r < R; ++r)
                    if (row0 + r < n) F::load_unit(staged[warp * R + r], lane, wu[r]);  // unit u0 + lane
            }
            __syncwarp();  // every lane has read the span before the next iteration overwrites it
        } else {
            if (u < units) {
#pragma unroll
                for (int r = 0; r < R; ++r)
                    if (row0 + r < n) F::load_unit(w + (row0 + r) * row_bytes, u, wu[r]);
            }
        }
        if (u < units) {
#pragma unroll
            for (int i = 0; i < M; ++i) {
                if (i < m) {
                    const int4* xv = reinterpret_cast<const int4*>(xq + i * k + 32 * u);  // 16-byte aligned
                    const int4 a = __ldg(xv), b = __ldg(xv + 1);
                    const int words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                    const float2 ds = __ldg(xds + i * units + u);
#pragma unroll
                    for (int r = 0; r < R; ++r)
                        if (row0 + r < n) acc[i][r] += dot_unit<F::kTwoScales>(wu[r], words, ds.x, ds.y);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < M; ++i)
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1)
                acc[i][r] += __shfl_xor_sync(0xffffffffu, acc[i][r], offset);
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < M; ++i)
#pragma unroll
            for (int r = 0; r < R; ++r)
                if (i < m && row0 + r < n) y[i * n + row0 + r] = acc[i][r];
    }
}

template <class F, int M, bool kStaged>
cudaError_t gemv_q8_kernel_launch(const uint8_t* w, int64_t row_bytes, const int8_t* xq, const float2* xds, float* y,
                                  int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
    const int64_t rows_per_block = int64_t(kGemvQ8Warps) * gemv_rows_per_warp<M>();
    const int64_t blocks = (n + rows_per_block - 1) / rows_per_block;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    gemv_q8_kernel<F, M, kStaged><<<unsigned(blocks), kGemvQ8Warps * 32, 0, stream>>>(w, row_bytes, xq, xds, y, int(m),
                                                                                     n, k);
    return cudaGetLastError();
}

template <class F, bool kStaged>
cudaError_t gemv_q8_dispatch(const uint8_t* w, int64_t row_bytes, const int8_t* xq, const float2* xds, float* y,
                             int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
    if (m == 1) return gemv_q8_kernel_launch<F, 1, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
    if (m == 2) return gemv_q8_kernel_launch<F, 2, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
    if (m <= 4) return gemv_q8_kernel_launch<F, 4, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
    if (m <= 8) return gemv_q8_kernel_launch<F, 8, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
    if (m <= 16) return gemv_q8_kernel_launch<F, 16, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
    return gemv_q8_kernel_launch<F, 32, kStaged>(w, row_bytes, xq, xds, y, m, n, k, stream);
}

// Quantizes x (m, k) to 8 bits in blocks of 32 into stream-ordered scratch, runs
// run_kernel(xq, xds) on it, and frees the scratch after the kernel: every integer GEMV's prologue.
template <class RunKernel>
cudaError_t with_quantized_x(const float* x, int64_t ldx, int64_t m, int64_t k, cudaStream_t stream,
                             RunKernel run_kernel) {
    const size_t q_bytes = size_t(m * k), ds_offset = (q_bytes + 255) / 256 * 256;
    void* scratch = nullptr;
    cudaError_t err = cudaMallocAsync(&scratch, ds_offset + size_t(m * (k / 32)) * sizeof(float2), stream);
    if (err != cudaSuccess) return err;
    int8_t* xq = static_cast<int8_t*>(scratch);
    float2* xds = reinterpret_cast<float2*>(static_cast<uint8_t*>(scratch) + ds_offset);
    const int64_t x_threads = m * (k / 32) * 32;
    quantize_x_kernel<<<unsigned((x_threads + 255) / 256), 256, 0, stream>>>(x, ldx, xq, xds, m, k);
    err = cudaGetLastError();
    if (err == cudaSuccess) err = run_kernel(xq, xds);
    const cudaError_t free_err = cudaFreeAsync(scratch, stream);
    return err != cudaSuccess ? err : free_err;
}

// Staging is off unless LOWBIT_CUDA_STAGING=1: on an H100 (sm_90, 2026-11-27, bench/cuda_bench.py) the
// direct-load kernel was faster at m = 1..32 for every type but q6_K (e.g. q4_0 28672x4096 m=1: 31.7 us
// direct vs 40.4 us staged), so L1 already merges the narrow loads there; kept for older parts.
inline bool staging_enabled() {
    static const bool enabled = [] {
        const char* v = std::getenv("LOWBIT_CUDA_STAGING");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return enabled;
}

// allow_staging: false forces the direct-load kernel (tests and benchmarks compare the two).
template <class F, bool kAllowStaging>
cudaError_t gemv_q8_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                           int64_t n, int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvQ8MaxRows || k % 32) return cudaErrorInvalidValue;
    constexpr int kGrain = F::kSpanBytes % 16 == 0 ? 16 : 8;
    const bool staged = kAllowStaging && staging_enabled() && row_bytes % kGrain == 0 &&
                        reinterpret_cast<uintptr_t>(w) % 16 == 0;
    return with_quantized_x(x, ldx, m, k, stream, [&](const int8_t* xq, const float2* xds) {
        return staged ? gemv_q8_dispatch<F, true>(w, row_bytes, xq, xds, y, m, n, k, stream)
                      : gemv_q8_dispatch<F, false>(w, row_bytes, xq, xds, y, m, n, k, stream);
    });
}

// The same computation on the host, for tests without a GPU. x: (m, k) f32 -> y: (m, n) f32.
template <class F>
void gemv_q8_host(const uint8_t* w, int64_t row_bytes, const float* x, float* y, int64_t m, int64_t n, int64_t k) {
    const int64_t units = k / 32;
    int8_t q[32];
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < n; ++r) y[i * n + r] = 0.f;
        for (int64_t u = 0; u < units; ++u) {
            float2 ds;
            quantize_x_block32(x + i * k + 32 * u, q, &ds);
            int words[8];
            memcpy(words, q, 32);
            for (int64_t r = 0; r < n; ++r) {
                Unit32 wu;
                F::load_unit(w + r * row_bytes, u, wu);
                y[i * n + r] += dot_unit<F::kTwoScales>(wu, words, ds.x, ds.y);
            }
        }
    }
}

template <class F>
FormatKernels make_format_kernels_q8() {
    FormatKernels fk = make_format_kernels<F>();
    fk.gemv = gemv_q8_launch<F, true>;
    fk.gemv_unstaged = gemv_q8_launch<F, false>;
    fk.gemv_max_rows = kGemvQ8MaxRows;
    fk.gemv_q8_host = gemv_q8_host<F>;
    return fk;
}

}  // namespace lowbit::cuda
