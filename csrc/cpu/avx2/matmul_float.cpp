// AVX2 matmul of the float weight types (f32, f16, bf16): activations in the same type (x rounded to
// f16 / bf16, as ggml does), products and sums in f32 with FMA.
//
// Few rows: matmul_float_gemv.h (each weight row read once against up to 4 activation rows). Many
// rows: 16 weight rows are converted once into two panels of
// 8 columns ([k][8] f32: one 32-byte load per k), and a 4 x 16 register tile of FMAs runs over them,
// one broadcast activation per row and k. k need not be a multiple of anything.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../../core/blocks.h"
#include "../../core/fp16.h"
#include "matmul_avx2.h"
#include "matmul_float_gemv.h"
#include "matmul_simd.h"

namespace lowbit::avx2 {

namespace {

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
        float_gemv<L, 16>(p);
    else
        gemm_panels<L>(p);
}

}  // namespace

void gemm_f32(const GemmArgs& p) { gemm<F32>(p); }
void gemm_f16(const GemmArgs& p) { gemm<F16>(p); }
void gemm_bf16(const GemmArgs& p) { gemm<BF16>(p); }

}  // namespace lowbit::avx2
