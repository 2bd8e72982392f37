// AVX2 kernels of the group formats (GPTQ / AWQ): codes -> f32 8 at a time, FMAs against f32
// activations. 4-bit is the format that must be fast: one 16-byte load unpacks to 32 codes with two
// zero-extensions, two masks and two shifts, then 4 conversions feed 4 FMAs per activation row. A GEMV
// is bound by reading the weights, so each weight row is read once, and a per-group sum is scaled once.
#include <immintrin.h>

#include <algorithm>

#include "../../core/group_quant.h"
#include "matmul_simd.h"

namespace lowbit {

namespace {

// 4-bit chunk: byte j = column j (low nibble) | column j + 16 (high) -> columns 0-7, 8-15, 16-23, 24-31.
struct Nibbles {
    static void decode(const uint8_t* row, int64_t chunk, __m256* f) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + chunk * 16));
        const __m256i e0 = _mm256_cvtepu8_epi32(b), e1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
        const __m256i low = _mm256_set1_epi32(0x0F);
        f[0] = _mm256_cvtepi32_ps(_mm256_and_si256(e0, low));
        f[1] = _mm256_cvtepi32_ps(_mm256_and_si256(e1, low));
        f[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(e0, 4));
        f[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(e1, 4));
    }
};

// 2/3/8-bit: one byte per column.
struct Bytes {
    static void decode(const uint8_t* row, int64_t chunk, __m256* f) {
        LOWBIT_UNROLL for (int p = 0; p < 4; ++p) {
            const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + chunk * 32 + 8 * p));
            f[p] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
        }
    }
};

template <class Dec>
void dequant_row(const GroupWeights& w, int64_t j, float* out) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    for (int64_t g = 0; g < w.groups; ++g) {
        const __m256 s = _mm256_set1_ps(w.scales[j * w.groups + g]), z = _mm256_set1_ps(w.zeros[j * w.groups + g]);
        for (int64_t c = w.chunk_start[g]; c < w.chunk_start[g + 1]; ++c) {
            __m256 f[4];
            Dec::decode(row, c, f);
            // a subtraction then a multiplication, no FMA: the reference's two roundings exactly
            LOWBIT_UNROLL for (int p = 0; p < 4; ++p)
                _mm256_storeu_ps(out + c * kGroupChunk + 8 * p, _mm256_mul_ps(_mm256_sub_ps(f[p], z), s));
        }
    }
}

// Weight row j against MA activation rows: per group, S accumulator sets (the 4 vectors of a chunk dealt
// round-robin) give enough independent FMA chains when MA is small; the group's sum is scaled into a
// running total, and the zero-point term sum_g scale * zero * xg is subtracted once at the end.
template <class Dec, int MA, int S>
void gemv_row(const GroupWeights& w, int64_t j, const float* xp, const float* xg, float* y, int64_t ldy) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    const float* sc = w.scales + j * w.groups;
    const float* zr = w.zeros + j * w.groups;
    __m256 tot[MA];
    float zterm[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        tot[i] = _mm256_setzero_ps();
        zterm[i] = 0.0f;
    }
    for (int64_t g = 0; g < w.groups; ++g) {
        const int64_t c0 = w.chunk_start[g], c1 = w.chunk_start[g + 1];
        if (c0 == c1) continue;
        __m256 acc[MA][S];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
            LOWBIT_UNROLL for (int r = 0; r < S; ++r) acc[i][r] = _mm256_setzero_ps();
        for (int64_t c = c0; c < c1; ++c) {
            __m256 f[4];
            Dec::decode(row, c, f);
            LOWBIT_UNROLL for (int p = 0; p < 4; ++p)
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i][p % S] = _mm256_fmadd_ps(
                    f[p], _mm256_loadu_ps(xp + i * w.kp + c * kGroupChunk + 8 * p), acc[i][p % S]);
        }
        const __m256 s = _mm256_set1_ps(sc[g]);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            __m256 sum = acc[i][0];
            LOWBIT_UNROLL for (int r = 1; r < S; ++r) sum = _mm256_add_ps(sum, acc[i][r]);
            tot[i] = _mm256_fmadd_ps(s, sum, tot[i]);
            zterm[i] += sc[g] * zr[g] * xg[i * w.groups + g];
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) y[i * ldy + j] = hsum_ps(tot[i]) - zterm[i];
}

template <class Dec>
void gemv(const GroupWeights& w, int64_t j0, int64_t j1, const float* xp, const float* xg, int64_t m, float* y,
          int64_t ldy) {
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const float* xi = xp + i0 * w.kp;
        const float* gi = xg + i0 * w.groups;
        float* yi = y + i0 * ldy;
        for (int64_t j = j0; j < j1; ++j) switch (std::min<int64_t>(4, m - i0)) {
                case 1: gemv_row<Dec, 1, 4>(w, j, xi, gi, yi, ldy); break;
                case 2: gemv_row<Dec, 2, 2>(w, j, xi, gi, yi, ldy); break;
                case 3: gemv_row<Dec, 3, 1>(w, j, xi, gi, yi, ldy); break;
                default: gemv_row<Dec, 4, 1>(w, j, xi, gi, yi, ldy); break;
            }
    }
}

void dequant_row_any(const GroupWeights& w, int64_t j, float* out) {
    if (w.bits == 4)
        dequant_row<Nibbles>(w, j, out);
    else
        dequant_row<Bytes>(w, j, out);
}

void gemv_any(const GroupWeights& w, int64_t j0, int64_t j1, const float* xp, const float* xg, int64_t m, float* y,
              int64_t ldy) {
    if (w.bits == 4)
        gemv<Nibbles>(w, j0, j1, xp, xg, m, y, ldy);
    else
        gemv<Bytes>(w, j0, j1, xp, xg, m, y, ldy);
}

}  // namespace

const GroupKernels& group_kernels_avx2() {
    static const GroupKernels table{dequant_row_any, gemv_any};
    return table;
}

}  // namespace lowbit
