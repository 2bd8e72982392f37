// AVX-512 kernels of the group formats: as csrc/cpu/avx2/group.cpp with 16-lane vectors, where 4-bit
// is cheaper still: one zero-extension of 16 bytes gives 16 lanes holding both nibbles of a byte, so a
// mask and a shift make all 32 codes of a chunk (2 conversions, 2 FMAs per activation row).
// GCC 12's avx512fintrin.h passes _mm512_undefined_*() as the pass-through of unmasked builtins and
// then warns about it (GCC bug 105593): a false positive, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "../../core/group_quant.h"

#define LOWBIT_UNROLL _Pragma("GCC unroll 32")

namespace lowbit {

namespace {

// 4-bit chunk: byte j = column j (low nibble) | column j + 16 (high) -> columns 0-15, 16-31.
struct Nibbles {
    static void decode(const uint8_t* row, int64_t chunk, __m512* f) {
        const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + chunk * 16)));
        f[0] = _mm512_cvtepi32_ps(_mm512_and_si512(e, _mm512_set1_epi32(0x0F)));
        f[1] = _mm512_cvtepi32_ps(_mm512_srli_epi32(e, 4));
    }
};

// 2/3/8-bit: one byte per column.
struct Bytes {
    static void decode(const uint8_t* row, int64_t chunk, __m512* f) {
        LOWBIT_UNROLL for (int p = 0; p < 2; ++p) f[p] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + chunk * 32 + 16 * p))));
    }
};

template <class Dec>
void dequant_row(const GroupWeights& w, int64_t j, float* out) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    for (int64_t g = 0; g < w.groups; ++g) {
        const __m512 s = _mm512_set1_ps(w.scales[j * w.groups + g]), z = _mm512_set1_ps(w.zeros[j * w.groups + g]);
        for (int64_t c = w.chunk_start[g]; c < w.chunk_start[g + 1]; ++c) {
            __m512 f[2];
            Dec::decode(row, c, f);
            // a subtraction then a multiplication, no FMA: the reference's two roundings exactly
            LOWBIT_UNROLL for (int p = 0; p < 2; ++p)
                _mm512_storeu_ps(out + c * kGroupChunk + 16 * p, _mm512_mul_ps(_mm512_sub_ps(f[p], z), s));
        }
    }
}

// Weight row j against MA activation rows. Two chunks per step, their 4 vectors dealt round-robin over S
// accumulator sets, so for one activation row each accumulator waits on one FMA per two chunks.
template <class Dec, int MA, int S>
void gemv_row(const GroupWeights& w, int64_t j, const float* xp, const float* xg, float* y, int64_t ldy) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    const float* sc = w.scales + j * w.groups;
    const float* zr = w.zeros + j * w.groups;
    __m512 tot[MA];
    float zterm[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        tot[i] = _mm512_setzero_ps();
        zterm[i] = 0.0f;
    }
    for (int64_t g = 0; g < w.groups; ++g) {
        const int64_t c0 = w.chunk_start[g], c1 = w.chunk_start[g + 1];
        if (c0 == c1) continue;
        __m512 acc[MA][S];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
            LOWBIT_UNROLL for (int r = 0; r < S; ++r) acc[i][r] = _mm512_setzero_ps();
        auto step = [&](int64_t c, int base) {
            __m512 f[2];
            Dec::decode(row, c, f);
            LOWBIT_UNROLL for (int p = 0; p < 2; ++p)
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i][(base + p) % S] = _mm512_fmadd_ps(
                    f[p], _mm512_loadu_ps(xp + i * w.kp + c * kGroupChunk + 16 * p), acc[i][(base + p) % S]);
        };
        int64_t c = c0;
        for (; c + 1 < c1; c += 2) {
            step(c, 0);
            step(c + 1, 2);
        }
        if (c < c1) step(c, 0);
        const __m512 s = _mm512_set1_ps(sc[g]);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            __m512 sum = acc[i][0];
            LOWBIT_UNROLL for (int r = 1; r < S; ++r) sum = _mm512_add_ps(sum, acc[i][r]);
            tot[i] = _mm512_fmadd_ps(s, sum, tot[i]);
            zterm[i] += sc[g] * zr[g] * xg[i * w.groups + g];
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) y[i * ldy + j] = _mm512_reduce_add_ps(tot[i]) - zterm[i];
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
                case 2: gemv_row<Dec, 2, 4>(w, j, xi, gi, yi, ldy); break;
                case 3: gemv_row<Dec, 3, 2>(w, j, xi, gi, yi, ldy); break;
                default: gemv_row<Dec, 4, 2>(w, j, xi, gi, yi, ldy); break;
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

const GroupKernels& group_kernels_avx512() {
    static const GroupKernels table{dequant_row_any, gemv_any};
    return table;
}

}  // namespace lowbit
