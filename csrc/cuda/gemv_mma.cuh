// Integer tensor-core GEMV/GEMM for small m (1..32), kernel "mma": the gemv_q8 numerics (activations
// quantized to 8 bits per 32-block, int32 dot product per 32-weight unit, scaled by the unit's scale and
// the block's d and s in fp32), but each 32-wide unit of 16 weight rows x 8 activation rows is one
// mma.sync.m16n8k32 (s8 x s8 -> s32) instead of 8 dp4a per (weight row, activation row) pair. Every
// weight byte is read once per call for all m rows. For formats with one scale per 32-weight unit
// (kTwoScales false: q4_0, q4_1, q8_0); a format opts in with load_mma_words.
//
// Fragment layouts (PTX ISA, "mma.m16n8k32" for .s8; g = lane / 4, t = lane % 4; word j of a
// 32-byte unit = bytes 4j .. 4j+3):
//   A (16 x 32, row): a0 = row g word t, a1 = row g+8 word t, a2 = row g word 4+t, a3 = row g+8 word 4+t
//   B (32 x 8, col):  b0 = column g word t, b1 = column g word 4+t
//   C (16 x 8, s32):  c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t), c3 = (g+8, 2t+1)
// A holds the weights (row = weight row), B the quantized activations (column = activation row), so
// Unit32 word t / 4+t of load_unit is exactly what a lane needs: load_mma_words gives those two.
//
// Block = kMmaWarps warps on the same 16 weight rows; warp w takes a contiguous quarter of the units
// (split k: enough blocks at n = 4096), then the warps' partial sums are added in shared memory.
// The per-lane steps are __host__ __device__ functions of the lane index, and gemv_mma_host runs them
// for 32 lanes with a host model of the mma written from the PTX layout above: tests without a GPU
// check the indexing, bounds and scaling of exactly the code the kernel runs.
#pragma once
#include <cuda_pipeline.h>

#include <vector>

#include "gemv_q8.cuh"

namespace lowbit::cuda {

constexpr int kMmaWarps = 4;        // warps per block, all on the same 16 weight rows (split k)
constexpr int kMmaUnroll = 4;       // units whose weights a lane loads before the first mma (loads in flight)

// One lane's A fragment for unit u of weight rows row0 .. row0+15 (rows past n are clamped to n-1:
// valid memory, results never stored), with the scale and offset of its rows g and g+8.
struct MmaA {
    int a[4];
    float scale[2];   // rows g, g+8
    float offset[2];
};

template <class F>
LOWBIT_HD void mma_load_a(const uint8_t* w, int64_t row_bytes, int64_t n, int64_t row0, int64_t u, int lane,
                          MmaA& frag) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        int64_t row = row0 + g + 8 * h;
        row = row < n ? row : n - 1;
        int lo, hi;
        F::load_mma_words(w + row * row_bytes, u, t, lo, hi, frag.scale[h], frag.offset[h]);
        frag.a[h] = lo;      // a0 / a1: word t
        frag.a[2 + h] = hi;  // a2 / a3: word 4+t
    }
}

// One lane's B fragment for unit u of activation rows 8*tile .. 8*tile+7 (rows >= m: zeros), and the
// (d, s) of the two activation rows its C elements belong to (2t, 2t+1 of the tile; zeros past m).
struct MmaB {
    int b[2];
    float2 ds[2];
};

LOWBIT_HD void mma_load_b(const int8_t* xq, const float2* xds, int m, int64_t k, int tile, int64_t u, int lane,
                          MmaB& frag) {
    const int g = lane >> 2, t = lane & 3;
    const int64_t units = k / 32;
    const int col = 8 * tile + g;
    if (col < m) {
        const int* words = reinterpret_cast<const int*>(xq + col * k + 32 * u);  // 4-byte aligned: k % 32 == 0
        frag.b[0] = words[t];
        frag.b[1] = words[4 + t];
    } else {
        frag.b[0] = frag.b[1] = 0;
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const int c = 8 * tile + 2 * t + j;
        frag.ds[j] = c < m ? xds[c * units + u] : make_float2(0.f, 0.f);
    }
}

// acc[h][j] (weight row g + 8h, activation column 2t + j) += the unit's contribution, as dot_unit.
LOWBIT_HD void mma_accumulate(const int c[4], const MmaA& a, const MmaB& b, float acc[4]) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            acc[2 * h + j] += a.scale[h] * (b.ds[j].x * float(c[2 * h + j])) + a.offset[h] * b.ds[j].y;
}

__device__ __forceinline__ void mma_s8_16x8x32(const int a[4], const int b[2], int c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    c[0] = c[1] = c[2] = c[3] = 0;
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    c[0] = c[1] = c[2] = c[3] = 0;  // never launched below sm_80 (the launcher checks)
    __trap();
#endif
}

// Host model of one warp-wide mma.m16n8k32 s8: fragments of all 32 lanes in, C fragments out, from the
// PTX layout (see the top of this file).
inline void mma_s8_16x8x32_host(const int a[32][4], const int b[32][2], int c[32][4]) {
    int8_t A[16][32], B[32][8];
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t = lane & 3;
        for (int e = 0; e < 16; ++e) {  // a_e for e = 0..15: register e / 4, byte e % 4
            const int row = (e < 4 || (e >= 8 && e < 12)) ? g : g + 8;
            const int col = 4 * t + (e & 3) + (e >= 8 ? 16 : 0);
            A[row][col] = int8_t(uint32_t(a[lane][e / 4]) >> (8 * (e % 4)));
        }
        for (int e = 0; e < 8; ++e) {  // b_e: register e / 4, byte e % 4
            const int row = 4 * t + (e & 3) + (e >= 4 ? 16 : 0);
            B[row][g] = int8_t(uint32_t(b[lane][e / 4]) >> (8 * (e % 4)));
        }
    }
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t = lane & 3;
        for (int e = 0; e < 4; ++e) {
            const int row = e < 2 ? g : g + 8, col = 2 * t + (e & 1);
            int s = 0;
            for (int q = 0; q < 32; ++q) s += int(A[row][q]) * int(B[q][col]);
            c[lane][e] = s;
        }
    }
}

// Units [u_begin, u_end) of one warp's share of k for weight rows row0 .. row0+15.
LOWBIT_HD void mma_warp_units(int64_t units, int warp, int64_t& u_begin, int64_t& u_end) {
    const int64_t per_warp = (units + kMmaWarps - 1) / kMmaWarps;
    u_begin = int64_t(warp) * per_warp < units ? int64_t(warp) * per_warp : units;
    u_end = u_begin + per_warp < units ? u_begin + per_warp : units;
}

// NT: column tiles of 8 activation rows (m <= 8 NT).
template <class F, int NT>
__global__ void __launch_bounds__(kMmaWarps * 32)
    gemv_mma_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const int8_t* __restrict__ xq,
                    const float2* __restrict__ xds, float* __restrict__ y, int m, int64_t n, int64_t k) {
    __shared__ float partial[kMmaWarps][NT][32][4];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t row0 = int64_t(blockIdx.x) * 16;
    const int64_t units = k / 32;
    int64_t u_begin, u_end;
    mma_warp_units(units, warp, u_begin, u_end);
    float acc[NT][4];
#pragma unroll
    for (int tile = 0; tile < NT; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[tile][e] = 0.f;
    for (int64_t u0 = u_begin; u0 < u_end; u0 += kMmaUnroll) {
        MmaA a[kMmaUnroll];
#pragma unroll
        for (int s = 0; s < kMmaUnroll; ++s)
            if (u0 + s < u_end) mma_load_a<F>(w, row_bytes, n, row0, u0 + s, lane, a[s]);
#pragma unroll
        for (int s = 0; s < kMmaUnroll; ++s) {
            if (u0 + s < u_end) {  // the same for the whole warp: mma.sync sees full warps
#pragma unroll
                for (int tile = 0; tile < NT; ++tile) {
                    MmaB b;
                    mma_load_b(xq, xds, m, k, tile, u0 + s, lane, b);
                    int c[4];
                    mma_s8_16x8x32(a[s].a, b.b, c);
                    mma_accumulate(c, a[s], b, acc[tile]);
                }
            }
        }
    }
#pragma unroll
    for (int tile = 0; tile < NT; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) partial[warp][tile][lane][e] = acc[tile][e];
    __syncthreads();
    // thread i of the block adds the warps' values of C element (tile, lane, e) = i, i + 128, ...
    for (int i = threadIdx.x; i < NT * 32 * 4; i += kMmaWarps * 32) {
        const int tile = i / 128, l = (i / 4) % 32, e = i % 4;
        float sum = 0.f;
#pragma unroll
        for (int q = 0; q < kMmaWarps; ++q) sum += partial[q][tile][l][e];
        const int g = l >> 2, t = l & 3;
        const int64_t row = row0 + g + 8 * (e >> 1);
        const int col = 8 * tile + 2 * t + (e & 1);
        if (row < n && col < m) y[int64_t(col) * n + row] = sum;
    }
}

template <class F, int NT>
cudaError_t gemv_mma_kernel_launch(const uint8_t* w, int64_t row_bytes, const int8_t* xq, const float2* xds, float* y,
                                   int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
    const int64_t blocks = (n + 15) / 16;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    gemv_mma_kernel<F, NT><<<unsigned(blocks), kMmaWarps * 32, 0, stream>>>(w, row_bytes, xq, xds, y, int(m), n, k);
    return cudaGetLastError();
}

// kernel "mma_async": the same warp tiles and numerics, but each warp first copies its 16 rows x
// kMmaStageUnits units into a shared-memory ring with cp.async (16-byte pieces, consecutive lanes on
// consecutive bytes of a row), kMmaStages(F) deep, and builds the A fragments from there. The direct
// kernel's fragment loads touch 8 rows (8 cache lines) per 2-byte load instruction; here a copy
// instruction covers ~4 rows x 144 bytes. Needs rows of 16-byte multiples at a 16-byte aligned address
// (q4_0 / q8_0: k % 256 == 0; q4_1: k % 128 == 0); otherwise the launcher runs the direct kernel.
constexpr int kMmaStageUnits = 8;  // units per stage: 8 x 18 / 20 / 34 bytes, 16-byte multiples

template <class F>
__host__ __device__ constexpr int mma_stage_row_bytes() { return kMmaStageUnits * F::kSpanBytes / 32; }
template <class F>
__host__ __device__ constexpr int mma_stages() {  // as deep as 48 KB of static shared memory allow (q8_0: 2, else 3)
    return kMmaWarps * 3 * 16 * mma_stage_row_bytes<F>() <= 48 * 1024 ? 3 : 2;
}

template <class F, int NT>
__global__ void __launch_bounds__(kMmaWarps * 32)
    gemv_mma_async_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const int8_t* __restrict__ xq,
                          const float2* __restrict__ xds, float* __restrict__ y, int m, int64_t n, int64_t k) {
    constexpr int kRowBytes = mma_stage_row_bytes<F>(), kStages = mma_stages<F>();
    static_assert(kRowBytes % 16 == 0, "stages are copied in 16-byte pieces");
    __shared__ __align__(16) uint8_t ring[kMmaWarps][kStages][16][kRowBytes];
    __shared__ float partial[kMmaWarps][NT][32][4];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int g = lane >> 2, t = lane & 3;
    const int64_t row0 = int64_t(blockIdx.x) * 16;
    const int64_t units = k / 32;
    // this warp's stages: [s_begin, s_end) of the row's ceil(units / 8) stages
    const int64_t stages_total = (units + kMmaStageUnits - 1) / kMmaStageUnits;
    const int64_t per_warp = (stages_total + kMmaWarps - 1) / kMmaWarps;
    const int64_t s_begin = min(int64_t(warp) * per_warp, stages_total);
    const int64_t s_end = min(s_begin + per_warp, stages_total);
    auto issue = [&](int64_t s) {  // stage s of the row -> ring slot (s - s_begin) % kStages; one group per call
        if (s < s_end) {
            const int64_t offset = s * kRowBytes;
            const int pieces = int(min(int64_t(kRowBytes), row_bytes - offset) / 16);  // row_bytes % 16 == 0
            uint8_t(*slot)[kRowBytes] = ring[warp][(s - s_begin) % kStages];
            for (int i = lane; i < 16 * pieces; i += 32) {
                const int r = i / pieces, c = i % pieces;
                const int64_t row = row0 + r < n ? row0 + r : n - 1;  // clamped: valid memory, never stored
                __pipeline_memcpy_async(&slot[r][16 * c], w + row * row_bytes + offset + 16 * c, 16);
            }
        }
        __pipeline_commit();
    };
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) issue(s_begin + s);
    float acc[NT][4];
#pragma unroll
    for (int tile = 0; tile < NT; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[tile][e] = 0.f;
    for (int64_t s = s_begin; s < s_end; ++s) {
        issue(s + kStages - 1);  // into the slot read in the previous iteration (a __syncwarp ago)
        __pipeline_wait_prior(kStages - 1);
        __syncwarp();
        uint8_t(*slot)[kRowBytes] = ring[warp][(s - s_begin) % kStages];
        const int64_t u0 = s * kMmaStageUnits;
        const int count = int(min(int64_t(kMmaStageUnits), units - u0));
        for (int j = 0; j < count; ++j) {  // the same for the whole warp
            MmaA a;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                int lo, hi;
                F::load_mma_words(slot[g + 8 * h], j, t, lo, hi, a.scale[h], a.offset[h]);
                a.a[h] = lo;
                a.a[2 + h] = hi;
            }
#pragma unroll
            for (int tile = 0; tile < NT; ++tile) {
                MmaB b;
                mma_load_b(xq, xds, m, k, tile, u0 + j, lane, b);
                int c[4];
                mma_s8_16x8x32(a.a, b.b, c);
                mma_accumulate(c, a, b, acc[tile]);
            }
        }
        __syncwarp();
    }
    __pipeline_wait_prior(0);
#pragma unroll
    for (int tile = 0; tile < NT; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) partial[warp][tile][lane][e] = acc[tile][e];
    __syncthreads();
    for (int i = threadIdx.x; i < NT * 32 * 4; i += kMmaWarps * 32) {
        const int tile = i / 128, l = (i / 4) % 32, e = i % 4;
        float sum = 0.f;
#pragma unroll
        for (int q = 0; q < kMmaWarps; ++q) sum += partial[q][tile][l][e];
        const int64_t row = row0 + (l >> 2) + 8 * (e >> 1);
        const int col = 8 * tile + 2 * (l & 3) + (e & 1);
        if (row < n && col < m) y[int64_t(col) * n + row] = sum;
    }
}

template <class F, int NT>
cudaError_t gemv_mma_async_kernel_launch(const uint8_t* w, int64_t row_bytes, const int8_t* xq, const float2* xds,
                                         float* y, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
    const int64_t blocks = (n + 15) / 16;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    gemv_mma_async_kernel<F, NT><<<unsigned(blocks), kMmaWarps * 32, 0, stream>>>(w, row_bytes, xq, xds, y, int(m),
                                                                                  n, k);
    return cudaGetLastError();
}

inline bool device_has_int8_mma() {  // mma.m16n8k32 s8: sm_80 and newer
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
    return major >= 8;
}

// kAsync: "mma_async" (cp.async staging) where rows allow it, else the direct "mma" kernel.
template <class F, bool kAsync>
cudaError_t gemv_mma_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                            int64_t n, int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvMmaMaxRows || k % 32) return cudaErrorInvalidValue;
    if (!device_has_int8_mma()) return cudaErrorNotSupported;
    const bool staged = kAsync && row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
    return with_quantized_x(x, ldx, m, k, stream, [&](const int8_t* xq, const float2* xds) {
        if (staged) {
            if (m <= 8) return gemv_mma_async_kernel_launch<F, 1>(w, row_bytes, xq, xds, y, m, n, k, stream);
            if (m <= 16) return gemv_mma_async_kernel_launch<F, 2>(w, row_bytes, xq, xds, y, m, n, k, stream);
            return gemv_mma_async_kernel_launch<F, 4>(w, row_bytes, xq, xds, y, m, n, k, stream);
        }
        if (m <= 8) return gemv_mma_kernel_launch<F, 1>(w, row_bytes, xq, xds, y, m, n, k, stream);
        if (m <= 16) return gemv_mma_kernel_launch<F, 2>(w, row_bytes, xq, xds, y, m, n, k, stream);
        return gemv_mma_kernel_launch<F, 4>(w, row_bytes, xq, xds, y, m, n, k, stream);
    });
}

// The kernel's computation on the host, lane by lane, with the host mma model. x: (m, k) -> y: (m, n).
template <class F>
void gemv_mma_host(const uint8_t* w, int64_t row_bytes, const float* x, float* y, int64_t m, int64_t n, int64_t k) {
    const int64_t units = k / 32;
    std::vector<int8_t> xq(size_t(m * k));
    std::vector<float2> xds(size_t(m * units));
    for (int64_t i = 0; i < m; ++i)
        for (int64_t u = 0; u < units; ++u)
            quantize_x_block32(x + i * k + 32 * u, xq.data() + i * k + 32 * u, &xds[size_t(i * units + u)]);
    const int tiles = int((m + 7) / 8);
    for (int64_t row0 = 0; row0 < n; row0 += 16) {
        std::vector<float> sum(size_t(tiles) * 32 * 4, 0.f);
        for (int warp = 0; warp < kMmaWarps; ++warp) {
            int64_t u_begin, u_end;
            mma_warp_units(units, warp, u_begin, u_end);
            std::vector<float> acc(size_t(tiles) * 32 * 4, 0.f);
            for (int64_t u = u_begin; u < u_end; ++u) {
                MmaA a[32];
                int a_regs[32][4];
                for (int lane = 0; lane < 32; ++lane) {
                    mma_load_a<F>(w, row_bytes, n, row0, u, lane, a[lane]);
                    memcpy(a_regs[lane], a[lane].a, sizeof(a_regs[lane]));
                }
                for (int tile = 0; tile < tiles; ++tile) {
                    MmaB b[32];
                    int b_regs[32][2], c[32][4];
                    for (int lane = 0; lane < 32; ++lane) {
                        mma_load_b(xq.data(), xds.data(), int(m), k, tile, u, lane, b[lane]);
                        memcpy(b_regs[lane], b[lane].b, sizeof(b_regs[lane]));
                    }
                    mma_s8_16x8x32_host(a_regs, b_regs, c);
                    for (int lane = 0; lane < 32; ++lane)
                        mma_accumulate(c[lane], a[lane], b[lane], &acc[size_t((tile * 32 + lane) * 4)]);
                }
            }
            for (size_t i = 0; i < sum.size(); ++i) sum[i] += acc[i];
        }
        for (int tile = 0; tile < tiles; ++tile)
            for (int lane = 0; lane < 32; ++lane)
                for (int e = 0; e < 4; ++e) {
                    const int g = lane >> 2, t = lane & 3;
                    const int64_t row = row0 + g + 8 * (e >> 1);
                    const int64_t col = 8 * tile + 2 * t + (e & 1);
                    if (row < n && col < m) y[col * n + row] = sum[size_t((tile * 32 + lane) * 4 + e)];
                }
    }
}

}  // namespace lowbit::cuda

namespace lowbit::cuda {

// Adds the tensor-core kernels (kernel="mma" / "mma_async", never the default) to a format's row.
template <class F>
FormatKernels with_gemv_mma(FormatKernels fk) {
    fk.gemv_mma = gemv_mma_launch<F, false>;
    fk.gemv_mma_async = gemv_mma_launch<F, true>;
    fk.gemv_mma_host = gemv_mma_host<F>;
    return fk;
}

}  // namespace lowbit::cuda
