// AVX2 many-row matmul: weight panels (matmul_panel.h) times int8 activation rows.
//
// Micro-kernel: R activation rows x one panel of 8 columns, full k. Per 4 k: one 32-byte load of the
// panel (4 levels of 8 columns) and, per row, one broadcast dword of activations and one maddubs
// (u8 level x s8 activation, adjacent pairs summed into int16). Unsigned levels add up in int16 for
// S steps (S from the largest level, so the sum cannot saturate), then one madd widens to int32.
// Per group: int32 -> f32, times scale * d_a, plus min * s_a. Signed levels (q8_0, iq4_nl, iq4_xs)
// use the sign trick instead: |w| x sign(a, w), widened every step.
#include <algorithm>

#include "matmul_avx2.h"
#include "matmul_panel.h"
#include "matmul_simd.h"

namespace lowbit::avx2 {

namespace {

constexpr int NC = 8;  // panel columns: the 8 int32 lanes of a ymm
constexpr int kRows = 4;  // activation rows per micro-kernel call
constexpr int kChunk = 64;  // weight rows unpacked at once: 8 panels, ~320 KB at k = 4096 (in L2)

// Steps of 4 k whose maddubs results add up in int16 without saturating (activations |a| <= 128).
constexpr int steps_in_int16(int max_level, int group) {
    int s = 1;
    while (2 * s <= group / 4 && 2 * s * 2 * max_level * 128 <= 32767) s *= 2;
    return s;
}

struct Rows {
    const uint8_t* a;  // first activation row
    int64_t a_rb;
    const float* ds;   // its {d, s} pairs
    int64_t ds_rb;
};

template <class Act, int G, int S, int R>
void tile_u8(const uint8_t* panel, int64_t groups, const Rows& rows, float* c, int64_t ldc, int cols) {
    using P = Panel<NC, G>;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* pg = panel + g * P::kGroupBytes;
        const int8_t* aq[R];
        for (int r = 0; r < R; ++r) aq[r] = Act::qs(rows.a + r * rows.a_rb, g);
        __m256i sum[R];
        for (int t0 = 0; t0 < G / 4; t0 += S) {
            __m256i s16[R];
            for (int t = t0; t < t0 + S; ++t) {
                const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pg + t * 32));
                for (int r = 0; r < R; ++r) {
                    const __m256i prod = _mm256_maddubs_epi16(w, bcast4(aq[r] + 4 * t));
                    s16[r] = t == t0 ? prod : _mm256_add_epi16(s16[r], prod);
                }
            }
            for (int r = 0; r < R; ++r) {
                const __m256i s32 = _mm256_madd_epi16(s16[r], ones);
                sum[r] = t0 == 0 ? s32 : _mm256_add_epi32(sum[r], s32);
            }
        }
        const __m256 sc = _mm256_load_ps(reinterpret_cast<const float*>(pg + P::kLevelBytes));
        const __m256 mn = _mm256_load_ps(reinterpret_cast<const float*>(pg + P::kLevelBytes) + NC);
        for (int r = 0; r < R; ++r) {
            float d, s;
            Act::ds(rows.ds + r * rows.ds_rb, g, &d, &s);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r]), _mm256_mul_ps(sc, _mm256_set1_ps(d)), acc[r]);
            acc[r] = _mm256_fmadd_ps(mn, _mm256_set1_ps(s), acc[r]);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r) store_cols(c + r * ldc, acc[r], cols);
}

template <class Act, int G, int R>
void tile_s8(const uint8_t* panel, int64_t groups, const Rows& rows, float* c, int64_t ldc, int cols) {
    using P = Panel<NC, G>;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* pg = panel + g * P::kGroupBytes;
        const int8_t* aq[R];
        for (int r = 0; r < R; ++r) aq[r] = Act::qs(rows.a + r * rows.a_rb, g);
        __m256i sum[R];
        for (int t = 0; t < G / 4; ++t) {
            const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pg + t * 32));
            const __m256i wabs = _mm256_abs_epi8(w);
            for (int r = 0; r < R; ++r) {
                // |w| * (a with w's sign): the signed product through maddubs' unsigned operand
                const __m256i prod = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(bcast4(aq[r] + 4 * t), w));
                const __m256i s32 = _mm256_madd_epi16(prod, ones);
                sum[r] = t == 0 ? s32 : _mm256_add_epi32(sum[r], s32);
            }
        }
        const __m256 sc = _mm256_load_ps(reinterpret_cast<const float*>(pg + P::kLevelBytes));
        for (int r = 0; r < R; ++r) {
            float d, s;
            Act::ds(rows.ds + r * rows.ds_rb, g, &d, &s);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r]), _mm256_mul_ps(sc, _mm256_set1_ps(d)), acc[r]);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r) store_cols(c + r * ldc, acc[r], cols);
}

template <class Dec, class Act, int R>
void tile(const uint8_t* panel, int64_t groups, const Rows& rows, float* c, int64_t ldc, int cols) {
    if constexpr (Dec::kSigned)
        tile_s8<Act, Dec::kGroup, R>(panel, groups, rows, c, ldc, cols);
    else
        tile_u8<Act, Dec::kGroup, steps_in_int16(Dec::kMaxLevel, Dec::kGroup), R>(panel, groups, rows, c, ldc, cols);
}

// One chunk of up to kChunk weight rows: unpack its panels, then run every activation row past them,
// kRows at a time (those rows stay in L1 while the panels stream from L2).
template <class Dec, class Act>
void gemm_panels(const GemmArgs& p) {
    using P = Panel<NC, Dec::kGroup>;
    const int64_t groups = p.k / Dec::kGroup, pbytes = P::bytes(p.k);
    const int64_t ds_rb = p.k / Act::kDsGroup * 2;
    uint8_t* panels = scratch(static_cast<size_t>(kChunk / NC * pbytes));
    const auto* w = static_cast<const uint8_t*>(p.w);
    const auto* a = static_cast<const uint8_t*>(p.a);
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t nj = std::min<int64_t>(kChunk, p.n - j0), np = (nj + NC - 1) / NC;
        for (int64_t q = 0; q < np; ++q)
            build_panel<Dec, NC, false>(w + (j0 + q * NC) * p.w_row_bytes, p.w_row_bytes,
                                        static_cast<int>(std::min<int64_t>(NC, nj - q * NC)), p.k, panels + q * pbytes);
        for (int64_t i0 = 0; i0 < p.m; i0 += kRows) {
            const Rows rows{a + i0 * p.a_row_bytes, p.a_row_bytes, p.a_ds + i0 * ds_rb, ds_rb};
            const int64_t rem = std::min<int64_t>(kRows, p.m - i0);
            for (int64_t q = 0; q < np; ++q) {
                const int cols = static_cast<int>(std::min<int64_t>(NC, nj - q * NC));
                float* c = p.c + i0 * p.ldc + j0 + q * NC;
                const uint8_t* panel = panels + q * pbytes;
                switch (rem) {
                    case 4: tile<Dec, Act, 4>(panel, groups, rows, c, p.ldc, cols); break;
                    case 3: tile<Dec, Act, 3>(panel, groups, rows, c, p.ldc, cols); break;
                    case 2: tile<Dec, Act, 2>(panel, groups, rows, c, p.ldc, cols); break;
                    default: tile<Dec, Act, 1>(panel, groups, rows, c, p.ldc, cols); break;
                }
            }
        }
    }
}

}  // namespace

void gemm_panels_q5_0(const GemmArgs& p) { gemm_panels<DecQ5_0, ActQ8_0>(p); }
void gemm_panels_q5_1(const GemmArgs& p) { gemm_panels<DecQ5_1, ActQ8_1>(p); }
void gemm_panels_iq4_nl(const GemmArgs& p) { gemm_panels<DecIQ4_NL, ActQ8_0>(p); }
void gemm_panels_q2_k(const GemmArgs& p) { gemm_panels<DecQ2_K, ActQ8_K<16>>(p); }
void gemm_panels_q3_k(const GemmArgs& p) { gemm_panels<DecQ3_K, ActQ8_K<16>>(p); }
void gemm_panels_q4_k(const GemmArgs& p) { gemm_panels<DecQ4_K, ActQ8_K<32>>(p); }
void gemm_panels_q5_k(const GemmArgs& p) { gemm_panels<DecQ5_K, ActQ8_K<32>>(p); }
void gemm_panels_q6_k(const GemmArgs& p) { gemm_panels<DecQ6_K, ActQ8_K<16>>(p); }
void gemm_panels_iq4_xs(const GemmArgs& p) { gemm_panels<DecIQ4_XS, ActQ8_K<32>>(p); }

}  // namespace lowbit::avx2
