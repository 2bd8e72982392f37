// AVX-512 many-row matmul of f32 / f16 (and bf16 without AVX512-BF16) weights: the AVX2 design
// (f32 panels, broadcast activations, FMA) on zmm registers. The gain is the register file: 32 zmm
// hold an 8 x 32 tile, so each 64-byte panel load feeds 8 FMAs and each broadcast 2, where the AVX2
// 4 x 16 tile needs a load per 4 FMAs and its 16 registers allow no more.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../../core/fp16.h"
#include "../avx2/matmul_avx2.h"
#include "../avx2/matmul_float_gemv.h"
#include "../avx2/matmul_panel.h"
#include "../avx2/matmul_simd.h"
#include "matmul_avx512.h"

namespace lowbit::avx512 {

namespace {

constexpr int NC = 16, kPanels = 2, kRows = 8;

// cols (<= NC) weight rows -> [k][NC] f32, missing columns zero: per 8 k, two 8 x 8 transposes (rows
// 0-7 and 8-15) fill the two halves of each k's 16 columns.
template <class L>
void build_panel(const uint8_t* w, int64_t w_row_bytes, int cols, int64_t k, float* panel) {
    const typename L::T* row[NC];
    for (int c = 0; c < NC; ++c)  // missing columns read the last real row (never stored)
        row[c] = reinterpret_cast<const typename L::T*>(w + std::min(c, cols - 1) * w_row_bytes);
    int64_t e = 0;
    for (; e + 8 <= k; e += 8)
        for (int c0 = 0; c0 < NC; c0 += 8) {
            __m256i r[8];
            for (int i = 0; i < 8; ++i)
                r[i] = c0 + i < cols ? _mm256_castps_si256(L::load8(row[c0 + i] + e)) : _mm256_setzero_si256();
            transpose8x8_epi32(r);
            for (int t = 0; t < 8; ++t)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(panel + (e + t) * NC + c0), r[t]);
        }
    for (; e < k; ++e)
        for (int c = 0; c < NC; ++c) panel[e * NC + c] = c < cols ? L::load1(row[c] + e) : 0.0f;
}

template <int R>
void tile(const float* const* panel, int64_t k, const float* a, int64_t a_stride, float* c, int64_t ldc,
          const int* cols) {
    __m512 acc[R][kPanels];
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t e = 0; e < k; ++e) {
        const __m512 w0 = _mm512_load_ps(panel[0] + e * NC), w1 = _mm512_load_ps(panel[1] + e * NC);
        LOWBIT_UNROLL for (int r = 0; r < R; ++r) {
            const __m512 av = _mm512_set1_ps(a[r * a_stride + e]);
            acc[r][0] = _mm512_fmadd_ps(w0, av, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(w1, av, acc[r][1]);
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < R; ++r)
        LOWBIT_UNROLL for (int j = 0; j < kPanels; ++j)
            _mm512_mask_storeu_ps(c + r * ldc + j * NC, static_cast<__mmask16>((1u << cols[j]) - 1), acc[r][j]);
}

// rows x k activations of type L as f32 (contiguous), or the input itself when f32.
template <class L>
const float* activations_f32(const GemmArgs& p, int64_t* stride) {
    const auto* a = static_cast<const uint8_t*>(p.a);
    if constexpr (std::is_same_v<L, F32>) {
        *stride = p.a_row_bytes / 4;
        return reinterpret_cast<const float*>(a);
    }
    *stride = p.k;
    float* out = reinterpret_cast<float*>(scratch(static_cast<size_t>(p.m * p.k) * sizeof(float), 1));
    for (int64_t r = 0; r < p.m; ++r) {
        const auto* src = reinterpret_cast<const typename L::T*>(a + r * p.a_row_bytes);
        int64_t e = 0;
        for (; e + 8 <= p.k; e += 8) _mm256_storeu_ps(out + r * p.k + e, L::load8(src + e));
        for (; e < p.k; ++e) out[r * p.k + e] = L::load1(src + e);
    }
    return out;
}

template <class L>
void gemm_panels(const GemmArgs& p) {
    const int64_t pfloats = p.k * NC;
    auto* panels = reinterpret_cast<float*>(scratch(static_cast<size_t>(kPanels * pfloats) * sizeof(float), 0));
    const auto* w = static_cast<const uint8_t*>(p.w);
    int64_t stride;
    const float* a_all = activations_f32<L>(p, &stride);  // once per tile, not per chunk of columns
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
            const float* a = a_all + i0 * stride;
            float* c = p.c + i0 * p.ldc + j0;
            switch (std::min<int64_t>(kRows, p.m - i0)) {
                case 8: tile<8>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 7: tile<7>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 6: tile<6>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 5: tile<5>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 4: tile<4>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 3: tile<3>(pp, p.k, a, stride, c, p.ldc, cols); break;
                case 2: tile<2>(pp, p.k, a, stride, c, p.ldc, cols); break;
                default: tile<1>(pp, p.k, a, stride, c, p.ldc, cols); break;
            }
        }
    }
}

// Few rows: the streaming kernels (matmul_float_gemv.h) with tiles for 32 ymm registers (zmm would not
// read faster). Even with 16 registers they beat building f32 panels up to ~48 rows (4096 x 4096, 1
// thread: f16 m = 16 66 -> 79, m = 32 83 -> 90, m = 48 92 -> 95 GFLOP/s, m = 63 even; f32 m = 16 56 -> 67,
// m = 32 75 -> 83). The choice stays below the driver's 64-row slabs, so it never depends on the thread
// count.
template <class L>
void gemm(const GemmArgs& p) {
    if (p.m < 48)
        float_gemv<L, 32>(p);
    else
        gemm_panels<L>(p);
}

}  // namespace

void register_float(KernelTable& t) {
    t.types[static_cast<int>(QType::F32)].gemm = gemm<F32>;
    t.types[static_cast<int>(QType::F16)].gemm = gemm<F16>;
    t.types[static_cast<int>(QType::BF16)].gemm = gemm<BF16>;
}

}  // namespace lowbit::avx512
