// Integer GEMV (m <= 16) for the formats that define load_unit: activations are quantized on the device
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

// x: (m, ldx) f32 -> xq: (m, k) int8, xds: (m, k/32) float2. One thread per block of 32. (static:
// each format file that includes this header gets its own copy.)
static __global__ void quantize_x_kernel(const float* __restrict__ x, int64_t ldx, int8_t* __restrict__ xq,
                                  float2* __restrict__ xds, int64_t m, int64_t k) {
    const int64_t blocks_per_row = k / 32;
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= m * blocks_per_row) return;
    const int64_t r = i / blocks_per_row, b = i % blocks_per_row;
    quantize_x_block32(x + r * ldx + 32 * b, xq + r * k + 32 * b, xds + i);
}

constexpr int kGemvQ8Warps = 4;  // weight rows per thread block (one per warp)

template <class F, int M>
__global__ void __launch_bounds__(kGemvQ8Warps * 32)
    gemv_q8_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const int8_t* __restrict__ xq,
                   const float2* __restrict__ xds, float* __restrict__ y, int m, int64_t n, int64_t k) {
    const int lane = threadIdx.x & 31;
    const int64_t row = int64_t(blockIdx.x) * kGemvQ8Warps + threadIdx.x / 32;
    if (row >= n) return;  // whole warps leave together
    const uint8_t* wrow = w + row * row_bytes;
    const int64_t units = k / 32;
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] = 0.f;
    for (int64_t u = lane; u < units; u += 32) {
        Unit32 wu;
        F::load_unit(wrow, u, wu);  // decoded once, used by all m activation rows
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
cudaError_t gemv_q8_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                           int64_t n, int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvQ8MaxRows || k % 32) return cudaErrorInvalidValue;
    const int64_t blocks = (n + kGemvQ8Warps - 1) / kGemvQ8Warps;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    // Scratch for the quantized activations: stream-ordered, so it is freed after the kernel ran.
    const size_t q_bytes = size_t(m * k), ds_offset = (q_bytes + 255) / 256 * 256;
    void* scratch = nullptr;
    cudaError_t err = cudaMallocAsync(&scratch, ds_offset + size_t(m * (k / 32)) * sizeof(float2), stream);
    if (err != cudaSuccess) return err;
    int8_t* xq = static_cast<int8_t*>(scratch);
    float2* xds = reinterpret_cast<float2*>(static_cast<uint8_t*>(scratch) + ds_offset);
    const int64_t x_blocks = m * (k / 32);
    quantize_x_kernel<<<unsigned((x_blocks + 127) / 128), 128, 0, stream>>>(x, ldx, xq, xds, m, k);
    err = cudaGetLastError();
    if (err == cudaSuccess) {
        const dim3 grid{unsigned(blocks), 1, 1};
        const dim3 block{unsigned(kGemvQ8Warps * 32), 1, 1};
        const int mi = int(m);
        if (m == 1) gemv_q8_kernel<F, 1><<<grid, block, 0, stream>>>(w, row_bytes, xq, xds, y, mi, n, k);
        else if (m == 2) gemv_q8_kernel<F, 2><<<grid, block, 0, stream>>>(w, row_bytes, xq, xds, y, mi, n, k);
        else if (m <= 4) gemv_q8_kernel<F, 4><<<grid, block, 0, stream>>>(w, row_bytes, xq, xds, y, mi, n, k);
        else if (m <= 8) gemv_q8_kernel<F, 8><<<grid, block, 0, stream>>>(w, row_bytes, xq, xds, y, mi, n, k);
        else gemv_q8_kernel<F, 16><<<grid, block, 0, stream>>>(w, row_bytes, xq, xds, y, mi, n, k);
        err = cudaGetLastError();
    }
    const cudaError_t free_err = cudaFreeAsync(scratch, stream);
    return err != cudaSuccess ? err : free_err;
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
    fk.gemv = gemv_q8_launch<F>;
    fk.gemv_max_rows = kGemvQ8MaxRows;
    fk.gemv_q8_host = gemv_q8_host<F>;
    return fk;
}

}  // namespace lowbit::cuda
