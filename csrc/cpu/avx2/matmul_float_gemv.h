// Few-row matmul of the float weight types (f32, f16, bf16), shared by the AVX2 and the AVX-512 files:
// each weight row is read once, in memory order, converted 8 values at a time, against up to 4
// activation rows read in their own type (x rounded to f16 / bf16 as ggml does; products and sums in
// f32 with FMA). kRegs is the vector register file the including file compiles for (16 ymm with AVX2,
// 32 with AVX-512VL): the tile shapes grow with it, the summation order does not, so both ISAs give the
// same bits.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../core/blocks.h"
#include "../../core/fp16.h"
#include "../../core/kernels.h"
#include "matmul_simd.h"

namespace lowbit {
namespace {

// Conversions of 8 / 1 values of each type to f32.
struct F32 {
    using T = float;
    static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
    static float load1(const T* p) { return *p; }
};
struct F16 {
    using T = fp16_t;
    static __m256 load8(const T* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static float load1(const T* p) { return _cvtsh_ss(*p); }
};
struct BF16 {  // bf16 is the top half of an f32
    using T = bf16_t;
    static __m256 load8(const T* p) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    static float load1(const T* p) { return bf16_to_f32(*p); }
};

// RW weight rows from j against MX activation rows (type L, stride a_stride): each x load feeds RW rows, so
// x is read from L1/L2 once per RW weight rows instead of once per row: with
// k = 14336 one x row (57 KB) no longer fits L1 and reloading it per row cost a fifth of the speed
// (4096 x 14336 f16 at 2 threads: 24 -> 36-45 GB/s, ggml 30). For m > 1 the same sharing runs the other
// way too (each weight load feeds MX rows): m = 8 on 4096 x 4096 went from 3.9 to 2.3 ms.
// S accumulator sets (8-value steps dealt round-robin) keep enough independent FMA chains at MX = 1.
// A row's summation order depends only on MX and S, never on RW, so the tail rows (RW = 1) and any
// split of the rows between threads give the same bits.
template <class L, int RW, int MX, int S>
void gemv_tile(const GemmArgs& p, int64_t j, const typename L::T* a, int64_t a_stride, float* c) {
    const typename L::T* w[RW];
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        w[r] = reinterpret_cast<const typename L::T*>(static_cast<const uint8_t*>(p.w) + (j + r) * p.w_row_bytes);
    __m256 acc[S][RW][MX];
    LOWBIT_UNROLL for (int s = 0; s < S; ++s)
        LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
            LOWBIT_UNROLL for (int i = 0; i < MX; ++i) acc[s][r][i] = _mm256_setzero_ps();
    auto step = [&](int64_t e, __m256 (*acc_s)[MX]) {
        __m256 xv[MX];
        LOWBIT_UNROLL for (int i = 0; i < MX; ++i) xv[i] = L::load8(a + i * a_stride + e);
        LOWBIT_UNROLL for (int r = 0; r < RW; ++r) {
            const __m256 wv = L::load8(w[r] + e);
            LOWBIT_UNROLL for (int i = 0; i < MX; ++i) acc_s[r][i] = _mm256_fmadd_ps(wv, xv[i], acc_s[r][i]);
        }
    };
    int64_t e = 0;
    for (; e + 8 * S <= p.k; e += 8 * S) LOWBIT_UNROLL for (int s = 0; s < S; ++s) step(e + 8 * s, acc[s]);
    for (; e + 8 <= p.k; e += 8) step(e, acc[0]);
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MX; ++i) {
            __m256 v = acc[0][r][i];
            LOWBIT_UNROLL for (int s = 1; s < S; ++s) v = _mm256_add_ps(v, acc[s][r][i]);
            float out = hsum_ps(v);
            for (int64_t t = e; t < p.k; ++t) out += L::load1(w[r] + t) * L::load1(a + i * a_stride + t);
            c[i * p.ldc + j + r] = out;
        }
}

// Rows j0..j1 against MX activation rows: RW at a time, the rest one by one.
template <class L, int RW, int MX, int S>
void gemv_rows(const GemmArgs& p, int64_t j0, int64_t j1, const typename L::T* a, int64_t a_stride, float* c) {
    int64_t j = j0;
    for (; j + RW <= j1; j += RW) gemv_tile<L, RW, MX, S>(p, j, a, a_stride, c);
    for (; j < j1; ++j) gemv_tile<L, 1, MX, S>(p, j, a, a_stride, c);
}

// Up to this k one x row sits in L1 next to the weight stream (measured with f32 x, 16 KB; f16 x is 8 KB).
constexpr int64_t kOneRowMaxK = 4096;

template <class L, int kRegs>
void float_gemv(const GemmArgs& p) {
    static_assert(kRegs == 16 || kRegs == 32, "tile shapes for 16 or 32 vector registers");
    constexpr bool k32 = kRegs == 32;
    constexpr int64_t kChunk = 64;  // weight rows that stay in L2 while every group of 4 rows passes
    // x is read in its own type (f16 / bf16: half the bytes of an f32 copy, converted per load like the
    // weights; the same products and order, so the same bits). With an f32 copy per thread two threads
    // had run no faster than one (f16 4096 x 4096: m = 1 53 -> 80 GB/s, m = 8 67-94 -> 115-134 GFLOP/s,
    // ggml 62 GB/s / 130 GFLOP/s; Zen 4), and one thread went from 28 to 38 GB/s at m = 1. With 32
    // registers a tile of 4 x 4 (or 8 x 2) outputs halves the loads per FMA of the 16-register shapes:
    // f16 4096 x 4096 1 thread m = 4 51 -> 70, m = 8 63 -> 83, m = 16 79 -> 93 GFLOP/s.
    const auto* an = static_cast<const typename L::T*>(p.a);
    const int64_t nstride = p.a_row_bytes / static_cast<int64_t>(sizeof(typename L::T));
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4) {
            const typename L::T* ani = an + i0 * nstride;
            float* c = p.c + i0 * p.ldc;
            switch (std::min<int64_t>(4, p.m - i0)) {  // registers: S * RW * MX accumulators + MX + 1
                case 1:  // x in L1: one weight stream at a time prefetches best (measured); else share x loads
                    if (p.k <= kOneRowMaxK)
                        gemv_rows<L, 1, 1, 4>(p, j0, j1, ani, nstride, c);
                    else
                        gemv_rows<L, 8, 1, 1>(p, j0, j1, ani, nstride, c);  // 8 chains; beat 4 x 2 and 6 x 2
                    break;
                case 2: gemv_rows<L, k32 ? 8 : 4, 2, 1>(p, j0, j1, ani, nstride, c); break;
                case 3: gemv_rows<L, k32 ? 6 : 3, 3, 1>(p, j0, j1, ani, nstride, c); break;
                default: gemv_rows<L, k32 ? 4 : 2, 4, 1>(p, j0, j1, ani, nstride, c); break;
            }
        }
    }
}

}  // namespace
}  // namespace lowbit
