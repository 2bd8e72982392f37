// Streaming integer GEMV (m <= 8), kernel "gemv_stream": the gemv_q8 numerics (activations quantized to
// 8 bits per 32-block exactly as quantize_x_kernel does, dp4a per 32-weight unit, dot_unit's scaling; so
// gemv_q8_host is its host reference), organised so the weights stream at memory bandwidth:
//
// - one launch: each thread block quantizes x itself into shared memory (no quantize kernel, no
//   scratch allocation, no second launch on the critical path; x is m * k * 4 bytes from L2);
// - a persistent grid (as many blocks as fit on the device at once): warp w of W takes weight rows
//   w, w + W, ..., so no wave of blocks leaves the device half idle at the end;
// - software pipelining: a lane issues the loads of its next step (kStreamUnroll units of the next
//   row part) before it decodes the current one, and the first step's loads are issued before the x
//   prologue, so DRAM is busy while x is quantized;
// - with the tile8 layouts (tiled.cuh) a unit's quants are one or two 16-byte loads.
//
// Shared memory: xq as [row][32-unit span][half][lane][16 B] (lane l reads 16 contiguous bytes at
// l * 16: no bank conflicts) and xds[row][unit]; m * ceil(k/1024) * 1024 * 1.25 bytes, capped by the
// launcher (kStreamMaxSmem), which otherwise reports cudaErrorNotSupported so the caller falls back.
#pragma once
#include <atomic>

#include "tiled.cuh"

namespace lowbit::cuda {

constexpr int kStreamWarps = 8;                   // warps per block
constexpr int64_t kStreamMaxSmem = 96 * 1024;     // bytes of x in shared memory at most

__host__ __device__ inline int64_t stream_spans(int64_t k) { return (k / 32 + 31) / 32; }
__host__ __device__ inline int64_t stream_smem_bytes(int64_t m, int64_t k) {
    return m * stream_spans(k) * (1024 + 32 * int64_t(sizeof(float2)));
}

// Where the kernel's weights come from. GgufRows<F>: rows of a table format (F::load_raw on row pointers);
// the GPTQ / AWQ group rows (group_int4.cu) bring their own, with per-group scales and a column map.
template <class F>
struct GgufRows {
    static constexpr bool kTwoScales = F::kTwoScales;
    static constexpr int kStreamUnroll = F::kStreamUnroll;
    using Raw = typename F::Raw;
    struct Args {
        const uint8_t* w;
        int64_t row_bytes;
    };
    LOWBIT_HD static void load(const Args& a, int64_t row, int64_t u, Raw& r) { F::load_raw(a.w + row * a.row_bytes, u, r); }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) { F::to_unit(r, out); }
    LOWBIT_HD static int64_t x_col(const Args&, int64_t c) { return c; }  // column of x for weight column c
    static constexpr bool kContiguousX = true;  // x_col is the identity: the prologue loads float4s
};

// S: a row source (GgufRows<F>, GroupInt4Rows). k: weight columns (a multiple of 32); x: (m, ldx) f32,
// weight column c meets x column S::x_col(c) (-1: zero).
template <class S, int M>
__global__ void __launch_bounds__(kStreamWarps * 32)
    gemv_stream_kernel(const typename S::Args args, const float* __restrict__ x, int64_t ldx, float* __restrict__ y,
                       int m, int64_t n, int64_t k) {
    constexpr int U = S::kStreamUnroll;
    extern __shared__ __align__(16) uint8_t smem[];
    const int64_t units = k / 32, spans = stream_spans(k);
    int8_t* xq = reinterpret_cast<int8_t*>(smem);
    float2* xds = reinterpret_cast<float2*>(smem + int64_t(m) * spans * 1024);
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t nwarps = int64_t(gridDim.x) * kStreamWarps;
    const int64_t steps_per_row = (units + 32 * U - 1) / (32 * U);

    // step s of a row: units s*32U + 32i + lane, i < U
    int64_t row = int64_t(blockIdx.x) * kStreamWarps + warp, step = 0;
    typename S::Raw cur[U];
    auto load_step = [&](int64_t r, int64_t s, typename S::Raw* dst) {
#pragma unroll
        for (int i = 0; i < U; ++i) {
            const int64_t u = s * 32 * U + 32 * i + lane;
            if (u < units) S::load(args, r, u, dst[i]);
        }
    };
    if (row < n) load_step(row, 0, cur);

    // x prologue: one thread per 32-block of x (amax, scale, rounding and sum as quantize_x_kernel, so the
    // same values), no shuffles: its 32 loads are independent and in flight together.
    for (int64_t b = threadIdx.x; b < int64_t(m) * units; b += kStreamWarps * 32) {
        const int64_t r = b / units, ub = b % units;
        float v[32];
        if constexpr (S::kContiguousX) {  // x rows 16-byte aligned (the launcher's contract)
            const float4* src = reinterpret_cast<const float4*>(x + r * ldx + 32 * ub);
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const float4 f = __ldg(src + j);
                v[4 * j] = f.x; v[4 * j + 1] = f.y; v[4 * j + 2] = f.z; v[4 * j + 3] = f.w;
            }
        } else {
#pragma unroll
            for (int j = 0; j < 32; ++j) {
                const int64_t col = S::x_col(args, 32 * ub + j);
                v[j] = col >= 0 ? __ldg(x + r * ldx + col) : 0.f;
            }
        }
        float amax = 0.f;
#pragma unroll
        for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(v[j]));
        const float d = amax / 127.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        int sum = 0;
        uint32_t packed[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            uint32_t word = 0;
#pragma unroll
            for (int t = 0; t < 4; ++t) {
                const int q = round_to_int(v[4 * j + t] * id);
                sum += q;
                word |= uint32_t(uint8_t(int8_t(q))) << (8 * t);
            }
            packed[j] = word;
        }
        int8_t* dst = xq + (r * spans + (ub >> 5)) * 1024 + (ub & 31) * 16;  // half 0; half 1 at +512
        *reinterpret_cast<uint4*>(dst) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
        *reinterpret_cast<uint4*>(dst + 512) = make_uint4(packed[4], packed[5], packed[6], packed[7]);
        xds[r * spans * 32 + ub] = make_float2(d, d * float(sum));
    }
    __syncthreads();
    if (row >= n) return;  // whole warps leave together, after the block barrier

    float acc[M];
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] = 0.f;
    while (row < n) {
        int64_t next_row = row, next_step = step + 1;
        if (next_step == steps_per_row) {
            next_step = 0;
            next_row = row + nwarps;
        }
        typename S::Raw nxt[U];
        if (next_row < n) load_step(next_row, next_step, nxt);
#pragma unroll
        for (int i = 0; i < U; ++i) {
            const int64_t u = step * 32 * U + 32 * i + lane;
            if (u < units) {
                Unit32 wu;
                S::to_unit(cur[i], wu);
                const int64_t span = u >> 5;
#pragma unroll
                for (int r = 0; r < M; ++r) {
                    if (r < m) {
                        const int8_t* base = xq + (int64_t(r) * spans + span) * 1024 + lane * 16;
                        const int4 a = *reinterpret_cast<const int4*>(base);
                        const int4 b = *reinterpret_cast<const int4*>(base + 512);
                        const int words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                        const float2 ds = xds[int64_t(r) * spans * 32 + u];
                        acc[r] += dot_unit<S::kTwoScales>(wu, words, ds.x, ds.y);
                    }
                }
            }
        }
        if (step == steps_per_row - 1) {
#pragma unroll
            for (int r = 0; r < M; ++r) {
#pragma unroll
                for (int offset = 16; offset > 0; offset >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], offset);
                if (lane == 0 && r < m) y[int64_t(r) * n + row] = acc[r];
                acc[r] = 0.f;
            }
        }
        row = next_row;
        step = next_step;
#pragma unroll
        for (int i = 0; i < U; ++i) cur[i] = nxt[i];
    }
}

template <class S, int M>
cudaError_t gemv_stream_kernel_launch(const typename S::Args& args, const float* x, int64_t ldx, float* y, int64_t m,
                                      int64_t n, int64_t k, cudaStream_t stream) {
    const auto kernel = gemv_stream_kernel<S, M>;
    const int64_t smem = stream_smem_bytes(m, k);
    cudaError_t err;
    int device = 0, sms = 0, per_sm = 0;
    if ((err = cudaGetDevice(&device)) != cudaSuccess) return err;
    if (smem > 48 * 1024) {  // opt in to kStreamMaxSmem once per device
        static std::atomic<bool> opted_in[64];
        if (device >= 64 || !opted_in[device].load(std::memory_order_relaxed)) {
            err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kStreamMaxSmem));
            if (err != cudaSuccess) return err;
            if (device < 64) opted_in[device].store(true, std::memory_order_relaxed);
        }
    }
    // Grid = blocks resident at once. The occupancy query costs microseconds of host time, as much as a
    // small GEMV's kernel: remembered per (instantiation, shared-memory size), the SM count per device.
    static std::atomic<int> sm_count[64];
    if (device < 64 && (sms = sm_count[device].load(std::memory_order_relaxed)) == 0) {
        if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess) return err;
        sm_count[device].store(sms, std::memory_order_relaxed);
    } else if (device >= 64 &&
               (err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess) {
        return err;
    }
    static std::atomic<int64_t> cached{-1};  // smem << 8 | blocks per SM (the same on every device we build for)
    const int64_t c = cached.load(std::memory_order_relaxed);
    if (c >= 0 && (c >> 8) == smem) {
        per_sm = int(c & 0xff);
    } else {
        if ((err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStreamWarps * 32, size_t(smem))) !=
            cudaSuccess)
            return err;
        cached.store(smem << 8 | (per_sm & 0xff), std::memory_order_relaxed);
    }
    if (per_sm < 1) return cudaErrorNotSupported;
    // Every warp gets the same number of rows: with n = 28672 and 3168 resident warps, 160 warps would
    // otherwise run a 10th row alone while the rest of the device idles (and 8192 rows: 59% of the warps
    // in the third round). Fewer warps, each with whole rounds, keep the memory system as busy.
    const int64_t resident = int64_t(sms) * per_sm * kStreamWarps;
    const int64_t rounds = (n + resident - 1) / resident;
    const int64_t warps = (n + rounds - 1) / rounds;
    const int64_t blocks = (warps + kStreamWarps - 1) / kStreamWarps;
    kernel<<<unsigned(blocks), kStreamWarps * 32, size_t(smem), stream>>>(args, x, ldx, y, int(m), n, k);
    return cudaGetLastError();
}

// cudaErrorNotSupported when x does not fit in shared memory (the caller falls back to gemv_q8).
template <class S>
cudaError_t gemv_stream_rows(const typename S::Args& args, const float* x, int64_t ldx, float* y, int64_t m, int64_t n,
                             int64_t k, cudaStream_t stream) {
    if (m < 1 || m > kGemvStreamMaxRows || k % 32) return cudaErrorInvalidValue;
    if (stream_smem_bytes(m, k) > kStreamMaxSmem) return cudaErrorNotSupported;
    if (m == 1) return gemv_stream_kernel_launch<S, 1>(args, x, ldx, y, m, n, k, stream);
    if (m == 2) return gemv_stream_kernel_launch<S, 2>(args, x, ldx, y, m, n, k, stream);
    if (m <= 4) return gemv_stream_kernel_launch<S, 4>(args, x, ldx, y, m, n, k, stream);
    if (m <= 8) return gemv_stream_kernel_launch<S, 8>(args, x, ldx, y, m, n, k, stream);
    return gemv_stream_kernel_launch<S, 16>(args, x, ldx, y, m, n, k, stream);
}

template <class F>
cudaError_t gemv_stream_launch(const uint8_t* w, int64_t row_bytes, const float* x, int64_t ldx, float* y, int64_t m,
                               int64_t n, int64_t k, cudaStream_t stream) {
    return gemv_stream_rows<GgufRows<F>>({w, row_bytes}, x, ldx, y, m, n, k, stream);
}

// F: a format with load_raw / to_unit (tiled.cuh), or StreamUnits<G> for one with load_unit alone.
// auto_rows: the m up to which "auto" picks it. On an H200 (2026-11-27, graph-replay timing) it won at
// m = 1 on the tile8 layouts (q4_0 28672x4096: 20.0 us against 21.1 for gemv) and lost at m = 4 (38.9 vs
// 36.2) and, through StreamUnits, on the K-quants' GGUF rows at every m (q4_K 34.5 vs 28.0 at m = 1).
template <class F>
FormatKernels with_gemv_stream(FormatKernels fk, int64_t auto_rows = 0) {
    fk.gemv_stream = gemv_stream_launch<F>;
    fk.gemv_stream_auto_rows = auto_rows;
    return fk;
}

}  // namespace lowbit::cuda
