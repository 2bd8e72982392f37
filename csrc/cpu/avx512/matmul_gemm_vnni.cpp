// AVX-512 VNNI many-row matmul: weight panels of 16 columns (matmul_panel.h) times int8 activations.
//
// Micro-kernel: R activation rows x C panels (16 columns each), full k. Per 4 k: C 64-byte panel loads
// and, per row, one broadcast activation dword feeding C vpdpbusd (u8 level x s8 activation, four
// products summed into each int32 lane: what AVX2 needs maddubs + madd + add for). vpdpbusd wants
// unsigned levels, so signed types (q8_0, iq4_nl, iq4_xs) are stored as level + 128 with min
// -128 * scale. Per group: int32 -> f32, times scale (and d_a, once per activation scale), plus
// min * s_a. 32 zmm registers hold the int32, partial and total f32 accumulators of a 4 x 2 tile
// with room for the operands.
#include "matmul_avx512.h"
#include "../../core/rows8.h"
#include "../avx2/matmul_avx2.h"

#if defined(__AVX512VNNI__)
#include <algorithm>

// GCC 12's _mm512_cvtepi32_ps starts from _mm512_undefined_ps(), which -Wmaybe-uninitialized reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "../avx2/matmul_panel.h"
#include "../avx2/matmul_simd.h"

namespace lowbit::avx512 {

namespace {

constexpr int NC = 16;      // panel columns: the 16 int32 lanes of a zmm
constexpr int kRows = 4;    // activation rows per micro-kernel call
constexpr int kChunk = 64;  // weight rows unpacked at once: 4 panels, ~320 KB at k = 4096 (in L2)

struct Rows {
    const uint8_t* a;  // first activation row
    int64_t a_rb;
    const float* ds;   // its {d, s} pairs
    int64_t ds_rb;
};

inline __m512i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// Groups sharing one activation scale d_a (a q8_K super-block: 8 or 16) are summed as sc * dot in
// f32 and scaled by d_a once, so a group costs cvt + 2 FMA per accumulator instead of cvt + mul +
// 2 FMA; the min term carries d_a already (s = d_a * sum a).
template <class Act, int G, int R, int C>
void tile(const uint8_t* const* panel, int64_t groups, const Rows& rows, float* c, int64_t ldc, const int* cols) {
    using P = Panel<NC, G>;
    constexpr int kPerD = Act::kGroupsPerD;
    __m512 acc[R][C];
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < C; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t g0 = 0; g0 < groups; g0 += kPerD) {
        __m512 part[R][C];  // sum over this d_a's groups of sc * dot
        LOWBIT_UNROLL for (int r = 0; r < R; ++r)
            LOWBIT_UNROLL for (int j = 0; j < C; ++j) part[r][j] = _mm512_setzero_ps();
        for (int64_t g = g0; g < g0 + kPerD; ++g) {
            const uint8_t* pg[C];
            LOWBIT_UNROLL for (int j = 0; j < C; ++j) pg[j] = panel[j] + g * P::kGroupBytes;
            const int8_t* aq[R];
            LOWBIT_UNROLL for (int r = 0; r < R; ++r) aq[r] = Act::qs(rows.a + r * rows.a_rb, g);
            __m512i sum[R][C];
            LOWBIT_UNROLL for (int r = 0; r < R; ++r)
                LOWBIT_UNROLL for (int j = 0; j < C; ++j) sum[r][j] = _mm512_setzero_si512();
            LOWBIT_UNROLL for (int t = 0; t < G / 4; ++t) {
                __m512i w[C];
                LOWBIT_UNROLL for (int j = 0; j < C; ++j) w[j] = _mm512_load_si512(pg[j] + t * 64);
                LOWBIT_UNROLL for (int r = 0; r < R; ++r) {
                    const __m512i a = bcast4(aq[r] + 4 * t);
                    LOWBIT_UNROLL for (int j = 0; j < C; ++j) sum[r][j] = _mm512_dpbusd_epi32(sum[r][j], w[j], a);
                }
            }
            LOWBIT_UNROLL for (int r = 0; r < R; ++r) {
                float d, s;
                Act::ds(rows.ds + r * rows.ds_rb, g, &d, &s);
                const __m512 vs = _mm512_set1_ps(s);
                LOWBIT_UNROLL for (int j = 0; j < C; ++j) {
                    const auto* f = reinterpret_cast<const float*>(pg[j] + P::kLevelBytes);
                    part[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][j]), _mm512_load_ps(f), part[r][j]);
                    acc[r][j] = _mm512_fmadd_ps(_mm512_load_ps(f + NC), vs, acc[r][j]);
                }
            }
        }
        LOWBIT_UNROLL for (int r = 0; r < R; ++r) {
            float d, s;
            Act::ds(rows.ds + r * rows.ds_rb, g0, &d, &s);
            const __m512 vd = _mm512_set1_ps(d);
            LOWBIT_UNROLL for (int j = 0; j < C; ++j) acc[r][j] = _mm512_fmadd_ps(part[r][j], vd, acc[r][j]);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < C; ++j)
            _mm512_mask_storeu_ps(c + r * ldc + j * NC, static_cast<__mmask16>((1u << cols[j]) - 1), acc[r][j]);
}

// R rows against the np panels of a chunk, two panels per micro-kernel call.
template <class Dec, class Act, int R>
void rows_x_panels(const uint8_t* panels, int64_t pbytes, int64_t np, int64_t nj, int64_t groups, const Rows& rows,
                   float* c, int64_t ldc) {
    for (int64_t q = 0; q < np; q += 2) {
        const uint8_t* pp[2] = {panels + q * pbytes, panels + (q + 1) * pbytes};
        const int cols[2] = {static_cast<int>(std::min<int64_t>(NC, nj - q * NC)),
                             static_cast<int>(std::min<int64_t>(NC, nj - (q + 1) * NC))};
        if (q + 1 < np)
            tile<Act, Dec::kGroup, R, 2>(pp, groups, rows, c + q * NC, ldc, cols);
        else
            tile<Act, Dec::kGroup, R, 1>(pp, groups, rows, c + q * NC, ldc, cols);
    }
}

// Chunks of up to kChunk weight rows: unpack the chunk's panels once, then run every activation row
// past them, kRows at a time (those rows stay in L1 while the panels stream from L2).
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
            build_panel<Dec, NC, true>(w + (j0 + q * NC) * p.w_row_bytes, p.w_row_bytes,
                                       static_cast<int>(std::min<int64_t>(NC, nj - q * NC)), p.k, panels + q * pbytes);
        for (int64_t i0 = 0; i0 < p.m; i0 += kRows) {
            const Rows rows{a + i0 * p.a_row_bytes, p.a_row_bytes, p.a_ds + i0 * ds_rb, ds_rb};
            float* c = p.c + i0 * p.ldc + j0;
            switch (std::min<int64_t>(kRows, p.m - i0)) {
                case 4: rows_x_panels<Dec, Act, 4>(panels, pbytes, np, nj, groups, rows, c, p.ldc); break;
                case 3: rows_x_panels<Dec, Act, 3>(panels, pbytes, np, nj, groups, rows, c, p.ldc); break;
                case 2: rows_x_panels<Dec, Act, 2>(panels, pbytes, np, nj, groups, rows, c, p.ldc); break;
                default: rows_x_panels<Dec, Act, 1>(panels, pbytes, np, nj, groups, rows, c, p.ldc); break;
            }
        }
    }
}

// Few rows: the VNNI streaming kernels; from 4 rows the panels are faster, unpacking included
// (measured at n = k = 4096 on Zen 4).
constexpr int64_t kPanelRows = 4;

template <gemm_fn Gemv, class Dec, class Act>
void gemm_by_rows(const GemmArgs& p) {
    if (p.m < kPanelRows)
        Gemv(p);
    else
        gemm_panels<Dec, Act>(p);
}

// rows8 K-quants: their own kernel for up to 31 rows of x, the panels on unpacked rows from 32 on, where
// the panels' reuse of unpacked weights across rows of x outweighs the copy (q4_K 4096 x 4096, 1 thread:
// the rows8 kernel 222 GFLOP/s at every m from 8 on, the unpacked panels 110 / 175 / 225 / 279 / 337 at
// m = 8 / 16 / 32 / 64 / 512).
template <gemm_fn Rows8, gemm_fn RowMajor, QType T>
void rows8_by_rows(const GemmArgs& p) {
    if (p.m < 32)
        Rows8(p);
    else
        gemm_rows8_unpacked(p, T, RowMajor, avx2::unpack_rows8);  // an AVX-512 CPU has AVX2
}

}  // namespace

bool register_vnni(KernelTable& t) {
    auto set = [&](QType q, gemm_fn f) { t.types[static_cast<int>(q)].gemm = f; };
    set(QType::Q4_0, gemm_ggml_order_q4_0);
    set(QType::Q4_1, gemm_ggml_order_q4_1);  // llama.cpp's bits (../avx2/matmul_ggml_order.h)
    set(QType::Q5_0, gemm_by_rows<gemv_q5_0, DecQ5_0, ActQ8_0>);
    set(QType::Q5_1, gemm_by_rows<gemv_q5_1, DecQ5_1, ActQ8_1>);
    set(QType::Q8_0, gemm_ggml_order_q8_0);
    set(QType::IQ4_NL, gemm_by_rows<gemv_iq4_nl, DecIQ4_NL, ActQ8_0>);
    set(QType::Q2_K, gemm_by_rows<gemv_q2_k, DecQ2_K, ActQ8_K<16>>);
    set(QType::Q3_K, gemm_by_rows<gemv_q3_k, DecQ3_K, ActQ8_K<16>>);
    set(QType::Q4_K, gemm_by_rows<gemv_q4_k, DecQ4_K, ActQ8_K<32>>);
    set(QType::Q5_K, gemm_by_rows<gemv_q5_k, DecQ5_K, ActQ8_K<32>>);
    set(QType::Q6_K, gemm_by_rows<gemv_q6_k, DecQ6_K, ActQ8_K<16>>);
    set(QType::IQ4_XS, gemm_by_rows<gemv_iq4_xs, DecIQ4_XS, ActQ8_K<32>>);
    t.types[static_cast<int>(QType::Q4_0)].gemm_rows8 = gemm_rows8_q4_0;
    t.types[static_cast<int>(QType::Q4_1)].gemm_rows8 = gemm_rows8_q4_1;
    t.types[static_cast<int>(QType::Q8_0)].gemm_rows8 = gemm_rows8_q8_0;
    t.types[static_cast<int>(QType::Q4_K)].gemm_rows8 =
        rows8_by_rows<gemm_rows8_q4_k, gemm_by_rows<gemv_q4_k, DecQ4_K, ActQ8_K<32>>, QType::Q4_K>;
    t.types[static_cast<int>(QType::Q5_K)].gemm_rows8 =
        rows8_by_rows<gemm_rows8_q5_k, gemm_by_rows<gemv_q5_k, DecQ5_K, ActQ8_K<32>>, QType::Q5_K>;
    t.types[static_cast<int>(QType::IQ4_XS)].gemm_rows8 =
        rows8_by_rows<gemm_rows8_iq4_xs, gemm_by_rows<gemv_iq4_xs, DecIQ4_XS, ActQ8_K<32>>, QType::IQ4_XS>;
    return true;
}

}  // namespace lowbit::avx512

#else  // compiler without -mavx512vnni

namespace lowbit::avx512 {
bool register_vnni(KernelTable&) { return false; }
}  // namespace lowbit::avx512

#endif
