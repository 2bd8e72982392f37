// AVX2 matmul of the float weight types (f32, f16, bf16): activations in the same type (x rounded to
// f16 / bf16, as ggml does), products and sums in f32 with FMA.
//
// Few rows: each weight row is read once, in memory order, and converted 8 values at a time, against
// up to 4 activation rows already in f32. Many rows: 16 weight rows are converted once into two panels of
// 8 columns ([k][8] f32: one 32-byte load per k), and a 4 x 16 register tile of FMAs runs over them,
// one broadcast activation per row and k. k need not be a multiple of anything.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../../core/blocks.h"
#include "../../core/fp16.h"
#include "matmul_avx2.h"
#include "matmul_simd.h"

namespace lowbit::avx2 {

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

// rows x k activations of type L -> f32 (contiguous, row stride k), or the input itself when f32.
template <class L>
const float* activations_f32(const GemmArgs& p, int64_t i0, int64_t rows, int slot) {
    const auto* a = reinterpret_cast<const uint8_t*>(p.a) + i0 * p.a_row_bytes;
    if constexpr (std::is_same_v<L, F32>) return reinterpret_cast<const float*>(a);
    float* out = reinterpret_cast<float*>(scratch(static_cast<size_t>(rows * p.k) * sizeof(float), slot));
    for (int64_t r = 0; r < rows; ++r) {
        const auto* src = reinterpret_cast<const typename L::T*>(a + r * p.a_row_bytes);
        int64_t e = 0;
        for (; e + 8 <= p.k; e += 8) _mm256_storeu_ps(out + r * p.k + e, L::load8(src + e));
        for (; e < p.k; ++e) out[r * p.k + e] = L::load1(src + e);
    }
    return out;
}

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

// Up to this k one f32 x row (16 KB) sits in L1 next to the weight stream.
constexpr int64_t kOneRowMaxK = 4096;

template <class L>
void gemv(const GemmArgs& p) {
    constexpr int64_t kChunk = 64;  // weight rows that stay in L2 while every group of 4 rows passes
    // x is read in its own type (f16 / bf16: half the bytes of an f32 copy, converted per load like the
    // weights; the same products and order, so the same bits). With an f32 copy per thread two threads
    // had run no faster than one (f16 4096 x 4096: m = 1 53 -> 80 GB/s, m = 8 67-94 -> 115-134 GFLOP/s,
    // ggml 62 GB/s / 130 GFLOP/s; Zen 4), and one thread went from 28 to 38 GB/s at m = 1.
    const auto* an = static_cast<const typename L::T*>(p.a);
    const int64_t nstride = p.a_row_bytes / static_cast<int64_t>(sizeof(typename L::T));
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4) {
            const typename L::T* ani = an + i0 * nstride;
            float* c = p.c + i0 * p.ldc;
            switch (std::min<int64_t>(4, p.m - i0)) {  // registers: S * RW * MX accumulators + MX + 1 of 16
                case 1:  // x in L1: one weight stream at a time prefetches best (measured); else share x loads
                    if (p.k <= kOneRowMaxK)
                        gemv_rows<L, 1, 1, 4>(p, j0, j1, ani, nstride, c);
                    else
                        gemv_rows<L, 8, 1, 1>(p, j0, j1, ani, nstride, c);  // 8 chains; beat 4 x 2 and 6 x 2
                    break;
                case 2: gemv_rows<L, 4, 2, 1>(p, j0, j1, ani, nstride, c); break;
                case 3: gemv_rows<L, 3, 3, 1>(p, j0, j1, ani, nstride, c); break;
                default: gemv_rows<L, 2, 4, 1>(p, j0, j1, ani, nstride, c); break;
            }
        }
    }
}

constexpr int NC = 8;        // panel columns: one ymm of f32
constexpr int kPanels = 2;   // panels per micro-kernel call (16 columns)
constexpr int kRows = 4;

// 8x8 f32 transpose in registers (the classic unpack / shuffle / permute network).
inline void transpose8(__m256* r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i)
        for (int h = 0; h < 2; ++h) {
            u[4 * i + 2 * h] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + 2 + h], _MM_SHUFFLE(1, 0, 1, 0));
            u[4 * i + 2 * h + 1] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + 2 + h], _MM_SHUFFLE(3, 2, 3, 2));
        }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

// cols (<= NC) weight rows -> [k][NC] f32, missing columns zero: 8 rows x 8 k converted and
// transposed at a time.
template <class L>
void build_panel(const uint8_t* w, int64_t w_row_bytes, int cols, int64_t k, float* panel) {
    const typename L::T* row[NC];
    for (int c = 0; c < NC; ++c)  // missing columns read the last real row (never stored)
        row[c] = reinterpret_cast<const typename L::T*>(w + std::min(c, cols - 1) * w_row_bytes);
    int64_t e = 0;
    for (; e + 8 <= k && cols == NC; e += 8) {
        __m256 r[8];
        for (int c = 0; c < NC; ++c) r[c] = L::load8(row[c] + e);
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_store_ps(panel + (e + i) * NC, r[i]);
    }
    for (; e < k; ++e)
        for (int c = 0; c < NC; ++c) panel[e * NC + c] = c < cols ? L::load1(row[c] + e) : 0.0f;
}

template <int R>
void tile(const float* const* panel, int64_t k, const float* a, int64_t a_stride, float* c, int64_t ldc,
          const int* cols) {
    __m256 acc[R][kPanels];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < kPanels; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t e = 0; e < k; ++e) {
        const __m256 w0 = _mm256_load_ps(panel[0] + e * NC), w1 = _mm256_load_ps(panel[1] + e * NC);
        for (int r = 0; r < R; ++r) {
            const __m256 av = _mm256_broadcast_ss(a + r * a_stride + e);
            acc[r][0] = _mm256_fmadd_ps(w0, av, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w1, av, acc[r][1]);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j) store_cols(c + r * ldc + j * NC, acc[r][j], cols[j]);
}

template <class L>
void gemm_panels(const GemmArgs& p) {
    const int64_t pfloats = p.k * NC;
    auto* panels = reinterpret_cast<float*>(scratch(static_cast<size_t>(kPanels * pfloats) * sizeof(float), 0));
    const auto* w = static_cast<const uint8_t*>(p.w);
    // f16 / bf16 activations converted once for the whole tile (at most 1024 rows: the driver's slabs);
    // converting per chunk of 16 columns cost a tenth of the time.
    const float* a_all = activations_f32<L>(p, 0, p.m, 1);
    const int64_t stride = std::is_same_v<L, F32> ? p.a_row_bytes / 4 : p.k;
    for (int64_t j0 = 0; j0 < p.n; j0 += kPanels * NC) {
        const float* pp[kPanels];
        int cols[kPanels];
        for (int q = 0; q < kPanels; ++q) {
            cols[q] = static_cast<int>(std::clamp<int64_t>(p.n - j0 - q * NC, 0, NC));
            if (cols[q] > 0)
                build_panel<L>(w + (j0 + q * NC) * p.w_row_bytes, p.w_row_bytes, cols[q], p.k, panels + q * pfloats);
            else  // no columns left: zeros, so the unused half of the tile computes on clean data
                std::memset(panels + q * pfloats, 0, static_cast<size_t>(pfloats) * sizeof(float));
            pp[q] = panels + q * pfloats;
        }
        for (int64_t i0 = 0; i0 < p.m; i0 += kRows) {
            const int64_t mi = std::min<int64_t>(kRows, p.m - i0);
            const float* a = a_all + i0 * stride;
            float* c = p.c + i0 * p.ldc + j0;
            switch (mi) {
                case 4: tile<4>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 3: tile<3>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 2: tile<2>(pp, p.k, a, stride, c, p.ldc, cols); break;
                default: tile<1>(pp, p.k, a, stride, c, p.ldc, cols); break;
            }
        }
    }
}

// Unpacking f32 panels costs about as much as a few rows of FMAs; below 16 rows streaming wins.
template <class L>
void gemm(const GemmArgs& p) {
    if (p.m < 16)
        gemv<L>(p);
    else
        gemm_panels<L>(p);
}

}  // namespace

void gemm_f32(const GemmArgs& p) { gemm<F32>(p); }
void gemm_f16(const GemmArgs& p) { gemm<F16>(p); }
void gemm_bf16(const GemmArgs& p) { gemm<BF16>(p); }

}  // namespace lowbit::avx2
