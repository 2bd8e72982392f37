// AVX-512 BF16 many-row matmul of bf16 weights: vdpbf16ps multiplies pairs of bf16 exactly and adds
// both products to an f32 lane, twice the work of an f32 FMA per instruction and no conversion.
//
// Panels of 16 columns hold the weights as bf16 pairs ([k/2][16][2]: one 64-byte load per 2 k);
// each activation row supplies its pair as one broadcast dword straight from the bf16 row. Tile:
// 4 rows x 2 panels. Few rows, and odd k (a pair would run past the row), use the AVX2 kernel.
#include "matmul_avx512.h"

#if defined(__AVX512BF16__)
#include <algorithm>

#include "../avx2/matmul_avx2.h"
#include "../avx2/matmul_panel.h"
#include "../avx2/matmul_simd.h"

namespace lowbit::avx512 {

namespace {

constexpr int NC = 16, kPanels = 2, kRows = 4;

// cols (<= NC) bf16 weight rows -> [k/2][NC] dwords (bf16 pairs); missing columns zero. Each pair
// is a dword already, so 8 x 8 dword transposes do it.
void build_panel(const uint8_t* w, int64_t w_row_bytes, int cols, int64_t k, uint32_t* panel) {
    const int64_t kp = k / 2;
    const uint32_t* row[NC];
    for (int c = 0; c < NC; ++c) row[c] = reinterpret_cast<const uint32_t*>(w + std::min(c, cols - 1) * w_row_bytes);
    for (int c0 = 0; c0 < NC; c0 += 8) {
        int64_t e = 0;
        for (; e + 8 <= kp; e += 8) {
            __m256i r[8];
            for (int i = 0; i < 8; ++i)
                r[i] = c0 + i < cols ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[c0 + i] + e))
                                     : _mm256_setzero_si256();
            transpose8x8_epi32(r);
            for (int t = 0; t < 8; ++t)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(panel + (e + t) * NC + c0), r[t]);
        }
        for (; e < kp; ++e)
            for (int i = 0; i < 8; ++i) panel[e * NC + c0 + i] = c0 + i < cols ? row[c0 + i][e] : 0;
    }
}

template <int R>
void tile(const uint32_t* const* panel, int64_t kp, const uint8_t* a, int64_t a_rb, float* c, int64_t ldc,
          const int* cols) {
    __m512 acc[R][kPanels];
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t e = 0; e < kp; ++e) {
        __m512bh w[kPanels];
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j) w[j] = (__m512bh)_mm512_loadu_si512(panel[j] + e * NC);
        LOWBIT_UNROLL for (int r = 0; r < R; ++r) {
            uint32_t pair;
            std::memcpy(&pair, a + r * a_rb + 4 * e, 4);
            const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
            LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], w[j], av);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j)
            _mm512_mask_storeu_ps(c + r * ldc + j * NC, static_cast<__mmask16>((1u << cols[j]) - 1), acc[r][j]);
}

void gemm_panels(const GemmArgs& p) {
    const int64_t kp = p.k / 2, pdwords = kp * NC;
    auto* panels = reinterpret_cast<uint32_t*>(scratch(static_cast<size_t>(kPanels * pdwords) * 4));
    const auto* w = static_cast<const uint8_t*>(p.w);
    const auto* a = static_cast<const uint8_t*>(p.a);
    for (int64_t j0 = 0; j0 < p.n; j0 += kPanels * NC) {
        const uint32_t* pp[kPanels];
        int cols[kPanels];
        for (int q = 0; q < kPanels; ++q) {
            cols[q] = static_cast<int>(std::clamp<int64_t>(p.n - j0 - q * NC, 0, NC));
            if (cols[q] > 0)
                build_panel(w + (j0 + q * NC) * p.w_row_bytes, p.w_row_bytes, cols[q], p.k, panels + q * pdwords);
            else  // no columns left: zeros, so the unused half of the tile computes on clean data
                std::memset(panels + q * pdwords, 0, static_cast<size_t>(pdwords) * 4);
            pp[q] = panels + q * pdwords;
        }
        for (int64_t i0 = 0; i0 < p.m; i0 += kRows) {
            const uint8_t* ai = a + i0 * p.a_row_bytes;
            float* c = p.c + i0 * p.ldc + j0;
            switch (std::min<int64_t>(kRows, p.m - i0)) {
                case 4: tile<4>(pp, kp, ai, p.a_row_bytes, c, p.ldc, cols); break;
                case 3: tile<3>(pp, kp, ai, p.a_row_bytes, c, p.ldc, cols); break;
                case 2: tile<2>(pp, kp, ai, p.a_row_bytes, c, p.ldc, cols); break;
                default: tile<1>(pp, kp, ai, p.a_row_bytes, c, p.ldc, cols); break;
            }
        }
    }
}

void gemm_bf16(const GemmArgs& p) {
    if (p.m < 16 || p.k % 2 != 0)
        avx2::gemm_bf16(p);
    else
        gemm_panels(p);
}

}  // namespace

bool register_bf16(KernelTable& t) {
    t.types[static_cast<int>(QType::BF16)].gemm = gemm_bf16;
    return true;
}

}  // namespace lowbit::avx512

#else  // compiler without -mavx512bf16

namespace lowbit::avx512 {
bool register_bf16(KernelTable&) { return false; }
}  // namespace lowbit::avx512

#endif
