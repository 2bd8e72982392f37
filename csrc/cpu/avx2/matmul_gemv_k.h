// Few-row matmul of the 256-blocks (q2_K .. q6_K, iq4_xs) with q8_K activations: each weight
// super-block is read once, unpacked in registers 32 values at a time and dotted with every
// activation row (MA <= 4 rows per pass).
//
// Integer work per 32 values: maddubs (u8 level x s8 activation -> int16 pairs), then madd with the
// sub-block scales as int16 (-> int32, scaled: one instruction for both; VNNI's vpdpwssd also
// accumulates). Offsets and mins never touch the levels: sum(sc * (q - off) * a) =
// sum(sc * q * a) - off * sum(sc * bsum), and q8_K's bsums (sums of 16 activations) make the second
// term one madd per super-block. One f32 FMA per
// super-block and row; the 8 lanes are summed once per output.
//
// Templates on the dot policy D (matmul_dot.h), compiled by the AVX2 and the AVX-512 VNNI files.
#pragma once
#include <algorithm>

#include "../../core/blocks.h"
#include "../../core/kernels.h"
#include "matmul_dot.h"
#include "matmul_simd.h"

namespace lowbit {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Scales as int16 lanes for the madd after maddubs. Sources hold 8 int16 scales in each 128-bit half
// (pshufb cannot cross halves); one pshufb then picks what a group of 32 values needs.
//   one_scale(v, j): scale j in all 16 lanes (q4_K, q5_K: one scale per 32 values)
//   two_scales(v, j): scale j in the low 8 lanes, j + 1 in the high 8 (per-16 scales: the low half
//   of maddubs' output covers values 0-15 of the 32, the high half values 16-31)
inline __m256i one_scale(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8))));
}
inline __m256i two_scales(__m256i v, int j) {
    const int16_t lo = static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8));
    const int16_t hi = static_cast<int16_t>((2 * j + 2) | ((2 * j + 3) << 8));
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo)));
}
// 16 int8 / uint8 scales -> int16, the first 8 in both halves of lo, the last 8 in both halves of hi.
inline void scales16(__m128i s8, bool is_signed, __m256i* lo, __m256i* hi) {
    const __m256i s16 = is_signed ? _mm256_cvtepi8_epi16(s8) : _mm256_cvtepu8_epi16(s8);
    *lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    *hi = _mm256_permute2x128_si256(s16, s16, 0x11);
}

// sum + sum(sc * q * a) over 32 values with one scale (one_scale) or two per-16 scales (two_scales).
template <class D>
inline __m256i dot32(__m256i sum, __m256i q, const int8_t* a, __m256i sc16) {
    return D::madd_add(sum, _mm256_maddubs_epi16(q, load256(a)), sc16);
}

// bsums (16 x int16) against 16 per-16 factors: sum(f_j * bsum_j) spread over 8 int32 lanes.
inline __m256i bsum_dot(const block_q8_K& a, __m256i f16) { return _mm256_madd_epi16(load256(a.bsums), f16); }

// The epilogue of the K-quants with mins (q2_K, q4_K, q5_K): per activation row,
// acc += d*d_a * sum(sc * q.a) - dmin*d_a * sum(m * bsums).
template <int MA>
inline void add_scaled_sums(const __m256i* sum, __m256i mins, float d, float dmin, const block_q8_K* const* a,
                            __m256* acc) {
    for (int i = 0; i < MA; ++i) {
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[i]), _mm256_set1_ps(d * a[i]->d), acc[i]);
        acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(bsum_dot(*a[i], mins)), _mm256_set1_ps(dmin * a[i]->d), acc[i]);
    }
}

// Each per-type add() adds one super-block of one weight row to acc[i] for MA activation rows.
template <class D>
struct SbQ4K {
    using Block = block_q4_K;
    template <int MA>
    static void add(const block_q4_K& w, const block_q8_K* const* a, __m256* acc) {
        const __m128i v = k4_scales(w.scales);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(v, v));  // sc 0-7 in both halves
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));  // m_j for bsums 2j, 2j+1
        const float d = f16_to_f32(w.d), dmin = f16_to_f32(w.dmin);
        const __m256i low = _mm256_set1_epi8(0x0F);
        // two sums (low and high nibbles): one chain of 8 dependent accumulations per super-block
        // (vpdpwssd's latency each) left the scheduler waiting on it: 0.88x -> 0.97x ggml at m = 1
        __m256i sum[MA], sum2[MA];
        for (int i = 0; i < MA; ++i) sum[i] = sum2[i] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m256i bits = load256(w.qs + 32 * c);
            const __m256i ql = _mm256_and_si256(bits, low), qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low);
            const __m256i sl = one_scale(sc, 2 * c), sh = one_scale(sc, 2 * c + 1);
            for (int i = 0; i < MA; ++i) {
                sum[i] = dot32<D>(sum[i], ql, a[i]->qs + 64 * c, sl);
                sum2[i] = dot32<D>(sum2[i], qh, a[i]->qs + 64 * c + 32, sh);
            }
        }
        for (int i = 0; i < MA; ++i) sum[i] = _mm256_add_epi32(sum[i], sum2[i]);
        add_scaled_sums<MA>(sum, mins, d, dmin, a, acc);
    }
};

template <class D>
struct SbQ5K {
    using Block = block_q5_K;
    template <int MA>
    static void add(const block_q5_K& w, const block_q8_K* const* a, __m256* acc) {
        const __m128i v = k4_scales(w.scales);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(v, v));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
        const float d = f16_to_f32(w.d), dmin = f16_to_f32(w.dmin);
        const __m256i low = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
        const __m256i hbits = load256(w.qh);  // bit e/32 of byte e%32: the 5th bit of value e
        __m256i sum[MA], sum2[MA];  // two chains, as in q4_K
        for (int i = 0; i < MA; ++i) sum[i] = sum2[i] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m256i bits = load256(w.qs + 32 * c);
            const __m256i hl = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c), one), 4);
            const __m256i hh = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c + 1), one), 4);
            const __m256i ql = _mm256_or_si256(_mm256_and_si256(bits, low), hl);
            const __m256i qh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), low), hh);
            const __m256i sl = one_scale(sc, 2 * c), sh = one_scale(sc, 2 * c + 1);
            for (int i = 0; i < MA; ++i) {
                sum[i] = dot32<D>(sum[i], ql, a[i]->qs + 64 * c, sl);
                sum2[i] = dot32<D>(sum2[i], qh, a[i]->qs + 64 * c + 32, sh);
            }
        }
        for (int i = 0; i < MA; ++i) sum[i] = _mm256_add_epi32(sum[i], sum2[i]);
        add_scaled_sums<MA>(sum, mins, d, dmin, a, acc);
    }
};

// q6_K: levels 0..63 (value + 32), 16 int8 scales of 16 values; offset via -32 * sum(sc * bsum).
template <class D>
struct SbQ6K {
    using Block = block_q6_K;
    template <int MA>
    static void add(const block_q6_K& w, const block_q8_K* const* a, __m256* acc) {
        const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
        const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
        __m256i sc_lo, sc_hi;
        scales16(s8, true, &sc_lo, &sc_hi);
        __m256i sum[2][MA];  // two chains (even / odd c), as in q4_K
        for (int i = 0; i < MA; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            __m256i q[4];
            q6_k_levels(w.ql + 64 * h, w.qh + 32 * h, q);
            for (int c = 0; c < 4; ++c) {
                const __m256i s = two_scales(h ? sc_hi : sc_lo, 2 * c);  // sub-blocks 8h + 2c, + 1
                for (int i = 0; i < MA; ++i)
                    sum[c & 1][i] = dot32<D>(sum[c & 1][i], q[c], a[i]->qs + 128 * h + 32 * c, s);
            }
        }
        for (int i = 0; i < MA; ++i) {  // the dot with q - 32: sum(sc*q*a) - 32 * sum(sc * bsum)
            const __m256i dot = _mm256_sub_epi32(_mm256_add_epi32(sum[0][i], sum[1][i]),
                                                 _mm256_slli_epi32(bsum_dot(*a[i], sc16), 5));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(f16_to_f32(w.d) * a[i]->d), acc[i]);
        }
    }
};

template <class D>
struct SbQ2K {
    using Block = block_q2_K;
    template <int MA>
    static void add(const block_q2_K& w, const block_q8_K* const* a, __m256* acc) {
        const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
        __m256i sc_lo, sc_hi;
        scales16(_mm_and_si128(s8, _mm_set1_epi8(0x0F)), false, &sc_lo, &sc_hi);
        __m256i s2[2][MA], sum[MA];  // two chains (even / odd p), as in q4_K
        for (int i = 0; i < MA; ++i) s2[0][i] = s2[1][i] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i v = load256(w.qs + 32 * h);
            for (int p = 0; p < 4; ++p) {
                const __m256i q = bits2(v, p), s = two_scales(h ? sc_hi : sc_lo, 2 * p);
                for (int i = 0; i < MA; ++i) s2[p & 1][i] = dot32<D>(s2[p & 1][i], q, a[i]->qs + 128 * h + 32 * p, s);
            }
        }
        for (int i = 0; i < MA; ++i) sum[i] = _mm256_add_epi32(s2[0][i], s2[1][i]);
        const float d = f16_to_f32(w.d), dmin = f16_to_f32(w.dmin);
        add_scaled_sums<MA>(sum, mins, d, dmin, a, acc);
    }
};

// q3_K: level = 2 low bits | hmask bit << 2 (value + 4); signed 6-bit scales per 16 values.
template <class D>
struct SbQ3K {
    using Block = block_q3_K;
    template <int MA>
    static void add(const block_q3_K& w, const block_q8_K* const* a, __m256* acc) {
        const __m128i s8 = _mm_sub_epi8(q3_k_scales(w.scales), _mm_set1_epi8(32));
        const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
        __m256i sc_lo, sc_hi;
        scales16(s8, true, &sc_lo, &sc_hi);
        const __m256i hm = load256(w.hmask), one = _mm256_set1_epi8(1);
        __m256i sum[2][MA];  // two chains (even / odd p), as in q4_K
        for (int i = 0; i < MA; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i v = load256(w.qs + 32 * h);
            for (int p = 0; p < 4; ++p) {
                const int e = 4 * h + p;  // which 32 of the 256: also the hmask bit
                const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, e), one), 2);
                const __m256i q = _mm256_or_si256(bits2(v, p), hb), s = two_scales(h ? sc_hi : sc_lo, 2 * p);
                for (int i = 0; i < MA; ++i) sum[p & 1][i] = dot32<D>(sum[p & 1][i], q, a[i]->qs + 32 * e, s);
            }
        }
        for (int i = 0; i < MA; ++i) {  // the dot with q - 4: sum(sc*q*a) - 4 * sum(sc * bsum)
            const __m256i dot = _mm256_sub_epi32(_mm256_add_epi32(sum[0][i], sum[1][i]),
                                                 _mm256_slli_epi32(bsum_dot(*a[i], sc16), 2));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(f16_to_f32(w.d) * a[i]->d), acc[i]);
        }
    }
};

// iq4_xs: signed table levels, so maddubs(|q|, sign(a, q)); signed 6-bit scales per 32.
template <class D>
struct SbIQ4XS {
    using Block = block_iq4_xs;
    template <int MA>
    static void add(const block_iq4_xs& w, const block_q8_K* const* a, __m256* acc) {
        const __m256i table = iq4_table();
        const __m256i low = _mm256_set1_epi8(0x0F);
        __m256i s2[2][MA];  // two chains (even / odd g), as in q4_K
        for (int i = 0; i < MA; ++i) s2[0][i] = s2[1][i] = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs + 16 * g));
            const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low);
            const __m256i q = _mm256_shuffle_epi8(table, nib), qabs = _mm256_abs_epi8(q);
            const int ls = ((w.scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((w.scales_h >> (2 * g)) & 3) << 4);
            const __m256i s = _mm256_set1_epi16(static_cast<int16_t>(ls - 32));
            for (int i = 0; i < MA; ++i) {
                const __m256i p = _mm256_maddubs_epi16(qabs, _mm256_sign_epi8(load256(a[i]->qs + 32 * g), q));
                s2[g & 1][i] = D::madd_add(s2[g & 1][i], p, s);
            }
        }
        for (int i = 0; i < MA; ++i)
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s2[0][i], s2[1][i])), _mm256_set1_ps(f16_to_f32(w.d) * a[i]->d), acc[i]);
    }
};

// One weight row against activation rows i0..i0+MA-1, all super-blocks.
template <class T, int MA>
void gemv_k_row(const GemmArgs& p, int64_t j, int64_t i0) {
    const auto* w = reinterpret_cast<const typename T::Block*>(static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes);
    const block_q8_K* a[MA];
    for (int i = 0; i < MA; ++i)
        a[i] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
    __m256 acc[MA];
    for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    const int64_t nb = p.k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        T::template add<MA>(w[b], a, acc);
        for (int i = 0; i < MA; ++i) ++a[i];
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j] = hsum_ps(acc[i]);
}

// Weight rows in chunks that stay in L1/L2 while up to 4 activation rows at a time pass over them.
template <class T>
void gemv_k(const GemmArgs& p) {
    constexpr int64_t kChunk = 32;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4)
            for (int64_t j = j0; j < j1; ++j) switch (std::min<int64_t>(4, p.m - i0)) {
                    case 1: gemv_k_row<T, 1>(p, j, i0); break;
                    case 2: gemv_k_row<T, 2>(p, j, i0); break;
                    case 3: gemv_k_row<T, 3>(p, j, i0); break;
                    default: gemv_k_row<T, 4>(p, j, i0); break;
                }
    }
}

}  // namespace
}  // namespace lowbit
