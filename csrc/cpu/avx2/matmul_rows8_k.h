// The K-quants on the rows8 layout (core/rows8.h), q8_K activations: 8 weight rows in the 8 lanes.
//
// In rows8 a 4-byte chunk of 8 rows is one load, so each sub-block's integer dot for 8 rows is a run of
// vpdpbusd against broadcast dwords of x (no maddubs / madd pairs, no scale shuffles per row): the
// sub-block sums meet their 6-bit scales in one 32-bit multiply per sub-block and 8 rows, the mins meet
// x's bsums in vpmaddwd, and each super-block ends in one exact int32 total per row (at most
// 8 x 63 x 32 x 31 x 127 < 2^31). Per output, per super-block, in order:
//   acc = fma(float(sum_j sc_j * q_j . a_j), d * d_a, acc);  acc = fnma(float(sum_j m_j * bsum_j), dmin * d_a, acc)
// The row-major kernels (matmul_gemv_k.h) sum 8 lanes per output and add them at the end: the two agree
// to float rounding, as every K-quant kernel does with the reference (lowbit's own order; llama.cpp's
// K-quant order is not reproduced anywhere).
#pragma once
#include <cstddef>
#include <vector>

#include "../../core/blocks.h"
#include "matmul_rows8.h"

namespace lowbit {
namespace {

LOWBIT_ROWS8_INLINE __m256i load_chunk(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// x's per-sub-block sums bsum_j = bsums[2j] + bsums[2j+1] as int16 pairs for vpmaddwd against the mins:
// word w of super-block b holds (bs_j, bs_j') for (j, j') = (0, 2), (1, 3), (4, 6), (5, 7).
inline void q8_k_min_pairs(const block_q8_K& a, int32_t* out) {
    int bs[8];
    for (int j = 0; j < 8; ++j) bs[j] = a.bsums[2 * j] + a.bsums[2 * j + 1];
    const int lo[4] = {0, 1, 4, 5};
    for (int w = 0; w < 4; ++w)
        out[w] = static_cast<int32_t>((static_cast<uint32_t>(bs[lo[w] + 2]) << 16) | (static_cast<uint32_t>(bs[lo[w]]) & 0xFFFF));
}

template <class D>
std::vector<int32_t> q8_k_min_pairs_all(const GemmArgs& p) {
    const int64_t nsb = p.k / QK_K;
    std::vector<int32_t> out(static_cast<size_t>(p.m * nsb * 4));
    for (int64_t i = 0; i < p.m; ++i) {
        const auto* a = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + i * p.a_row_bytes);
        for (int64_t b = 0; b < nsb; ++b) q8_k_min_pairs(a[b], out.data() + (i * nsb + b) * 4);
    }
    return out;
}

// q4_K / q5_K's 12 scale bytes of 8 rows (three chunks) -> per lane the 6-bit scales and mins, 4 per
// 32-bit word: sc 0-3, sc 4-7, m 0-3, m 4-7 (k4_scales, lane-wise).
struct K4Scales {
    __m256i sc03, sc47, mn03, mn47;
};
LOWBIT_ROWS8_INLINE K4Scales rows8_k4_scales(const uint8_t* s) {
    const __m256i a0 = load_chunk(s), a1 = load_chunk(s + 32), a2 = load_chunk(s + 64);
    const __m256i m6 = _mm256_set1_epi32(0x3f3f3f3f), m4 = _mm256_set1_epi32(0x0f0f0f0f), m2 = _mm256_set1_epi32(0x03030303);
    const auto top2 = [&](__m256i a) { return _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(a, 6), m2), 4); };
    return {_mm256_and_si256(a0, m6), _mm256_or_si256(_mm256_and_si256(a2, m4), top2(a0)), _mm256_and_si256(a1, m6),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(a2, 4), m4), top2(a1))};
}
// Byte j (0-3) of each lane as int32.
LOWBIT_ROWS8_INLINE __m256i lane_byte(__m256i v, int j) {
    return _mm256_and_si256(_mm256_srli_epi32(v, 8 * j), _mm256_set1_epi32(0xFF));
}
// sum_j m_j * bsum_j for 8 rows: the mins as int16 pairs (bytes 0, 2 and 1, 3 of each word) against x's pairs.
LOWBIT_ROWS8_INLINE __m256i rows8_k4_mins(const K4Scales& s, const int32_t* pairs) {
    const __m256i lo16 = _mm256_set1_epi32(0x00FF00FF);
    __m256i t = _mm256_madd_epi16(_mm256_and_si256(s.mn03, lo16), _mm256_set1_epi32(pairs[0]));
    t = _mm256_add_epi32(t, _mm256_madd_epi16(_mm256_and_si256(_mm256_srli_epi32(s.mn03, 8), lo16), _mm256_set1_epi32(pairs[1])));
    t = _mm256_add_epi32(t, _mm256_madd_epi16(_mm256_and_si256(s.mn47, lo16), _mm256_set1_epi32(pairs[2])));
    return _mm256_add_epi32(t, _mm256_madd_epi16(_mm256_and_si256(_mm256_srli_epi32(s.mn47, 8), lo16), _mm256_set1_epi32(pairs[3])));
}

// q4_K / q5_K, group g against rows i0..i0+MA-1 of x. Fields of a rows8 block (blocks.h order): d[8],
// dmin[8], 3 scale chunks, then (q5_K) 8 qh chunks, then 32 qs chunks: chunk 8p + l holds the bytes of
// values 64p + 4l.. (low nibbles, sub-block 2p) and 64p + 32 + 4l.. (high, sub-block 2p + 1); q5_K's
// fifth bit of value e is bit e / 32 of qh byte e % 32, so qh chunk l % 8 serves every p.
template <class D, bool kQ5, int MA, bool kPrefetch>
void rows8_q45_k_tile(const GemmArgs& p, int64_t g, int64_t i0, const int32_t* min_pairs) {
    constexpr int64_t kBlock = 8 * (kQ5 ? sizeof(block_q5_K) : sizeof(block_q4_K));
    constexpr int64_t kQs = 8 * (kQ5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
    constexpr int64_t kQh = 8 * offsetof(block_q5_K, qh);
    const int64_t nsb = p.k / QK_K;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const block_q8_K* a[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
        a[i] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
    const __m256i low = _mm256_set1_epi8(0x0F), bit = _mm256_set1_epi8(1);
    __m256 acc[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch<kPrefetch, kBlock>(blk);
        const K4Scales s = rows8_k4_scales(blk + 32);
        __m256i isum[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) isum[i] = _mm256_setzero_si256();
        LOWBIT_UNROLL for (int q = 0; q < 4; ++q) {  // sub-blocks 2q (low nibbles) and 2q + 1 (high)
            __m256i sl[MA][2], sh[MA][2];  // two chains each
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) sl[i][0] = sl[i][1] = sh[i][0] = sh[i][1] = _mm256_setzero_si256();
            LOWBIT_UNROLL for (int l = 0; l < 8; ++l) {
                const __m256i c = load_chunk(blk + kQs + 32 * (8 * q + l));
                __m256i lo = _mm256_and_si256(c, low), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), low);
                if constexpr (kQ5) {
                    const __m256i h = load_chunk(blk + kQh + 32 * l);
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * q), bit), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * q + 1), bit), 4));
                }
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                    sl[i][l & 1] = D::dot4_add(sl[i][l & 1], lo, bcast_dword(a[i][b].qs, 16 * q + l));
                    sh[i][l & 1] = D::dot4_add(sh[i][l & 1], hi, bcast_dword(a[i][b].qs, 16 * q + 8 + l));
                }
            }
            const __m256i scl = lane_byte(q < 2 ? s.sc03 : s.sc47, (2 * q) % 4);
            const __m256i sch = lane_byte(q < 2 ? s.sc03 : s.sc47, (2 * q + 1) % 4);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                isum[i] = _mm256_add_epi32(isum[i], _mm256_mullo_epi32(_mm256_add_epi32(sl[i][0], sl[i][1]), scl));
                isum[i] = _mm256_add_epi32(isum[i], _mm256_mullo_epi32(_mm256_add_epi32(sh[i][0], sh[i][1]), sch));
            }
        }
        const __m256 d8 = rows8_f16x8(blk), dmin8 = rows8_f16x8(blk + 16);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const __m256i imin = rows8_k4_mins(s, min_pairs + ((i0 + i) * nsb + b) * 4);
            const __m256 da = _mm256_set1_ps(a[i][b].d);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d8, da), acc[i]);
            acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(dmin8, da), acc[i]);
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) _mm256_storeu_ps(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

// x's -128 * bsum_j per sub-block of 32 (bsum_j = bsums[2j] + bsums[2j+1]): the seed of iq4_xs's
// sub-block dots, whose levels are the table values + 128 (unsigned, for vpdpbusd). (m, nsb, 8).
template <class D>
std::vector<int32_t> q8_k_seeds_128(const GemmArgs& p) {
    const int64_t nsb = p.k / QK_K;
    std::vector<int32_t> out(static_cast<size_t>(p.m * nsb * 8));
    for (int64_t i = 0; i < p.m; ++i) {
        const auto* a = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + i * p.a_row_bytes);
        for (int64_t b = 0; b < nsb; ++b)
            for (int j = 0; j < 8; ++j) out[(i * nsb + b) * 8 + j] = -128 * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    return out;
}

// iq4_xs, group g against rows i0..i0+MA-1. Fields: d[8], scales_h[8] (u16), one scales_l chunk, then 32 qs
// chunks: chunk 4j + u holds the bytes of values 32j + 4u.. (low nibbles) and 32j + 16 + 4u.. (high) of
// sub-block j, whose scale is ls_j - 32 with ls_j = bits 4j.. of scales_l | bits 2j.. of scales_h << 4.
// With VNNI the levels are the iq4 table + 128 (vpdpbusd's unsigned side) and the sub-block dots are
// seeded with -128 * the sub-block's activation sum; AVX2's maddubs would saturate on those (241 x 127
// x 2 > 32767), so there the signed levels go in as |kv| against sign(a, kv). Both exact:
// sum_j (ls_j - 32) * kv . a per row in int32.
template <class D, int MA, bool kPrefetch>
void rows8_iq4_xs_tile(const GemmArgs& p, int64_t g, int64_t i0, const int32_t* seeds) {
    constexpr int64_t kBlock = 8 * sizeof(block_iq4_xs);
    constexpr int64_t kQs = 8 * offsetof(block_iq4_xs, qs), kSl = 8 * offsetof(block_iq4_xs, scales_l);
    const int64_t nsb = p.k / QK_K;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const block_q8_K* a[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
        a[i] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
    const __m256i table = D::kVnni ? _mm256_add_epi8(iq4_table(), _mm256_set1_epi8(static_cast<char>(0x80))) : iq4_table();
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch<kPrefetch, kBlock>(blk);
        const __m256i sl = load_chunk(blk + kSl);
        const __m256i sh = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
        __m256i isum[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) isum[i] = _mm256_setzero_si256();
        LOWBIT_UNROLL for (int j = 0; j < 8; ++j) {
            __m256i s[MA][2];  // two chains per sub-block, the first seeded
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                s[i][0] = D::kVnni ? _mm256_set1_epi32(seeds[((i0 + i) * nsb + b) * 8 + j]) : _mm256_setzero_si256();
                s[i][1] = _mm256_setzero_si256();
            }
            LOWBIT_UNROLL for (int u = 0; u < 4; ++u) {
                const __m256i c = load_chunk(blk + kQs + 32 * (4 * j + u));
                const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(c, low));
                const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                    const __m256i xl = bcast_dword(a[i][b].qs, 8 * j + u), xh = bcast_dword(a[i][b].qs, 8 * j + 4 + u);
                    if constexpr (D::kVnni) {
                        s[i][0] = D::dot4_add(s[i][0], lo, xl);
                        s[i][1] = D::dot4_add(s[i][1], hi, xh);
                    } else {
                        s[i][0] = D::dot4_add(s[i][0], _mm256_abs_epi8(lo), _mm256_sign_epi8(xl, lo));
                        s[i][1] = D::dot4_add(s[i][1], _mm256_abs_epi8(hi), _mm256_sign_epi8(xh, hi));
                    }
                }
            }
            const __m256i ls = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(sl, 4 * j), _mm256_set1_epi32(0xF)),
                                               _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(sh, 2 * j), _mm256_set1_epi32(3)), 4));
            const __m256i sc = _mm256_sub_epi32(ls, _mm256_set1_epi32(32));
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
                isum[i] = _mm256_add_epi32(isum[i], _mm256_mullo_epi32(_mm256_add_epi32(s[i][0], s[i][1]), sc));
        }
        const __m256 d8 = rows8_f16x8(blk);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d8, _mm256_set1_ps(a[i][b].d)), acc[i]);
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) _mm256_storeu_ps(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

template <class D>
constexpr int kRows8DecodeK = D::kVnni ? 4 : 1;

template <class D>
void gemm_rows8_iq4_xs(const GemmArgs& p) {
    const std::vector<int32_t> seeds = D::kVnni ? q8_k_seeds_128<D>(p) : std::vector<int32_t>();
    rows8_by_groups<kRows8DecodeK<D>>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_iq4_xs_tile<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0, seeds.data());
    });
}

template <class D, bool kQ5>
void gemm_rows8_q45_k(const GemmArgs& p) {
    const std::vector<int32_t> pairs = q8_k_min_pairs_all<D>(p);
    rows8_by_groups<kRows8DecodeK<D>>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q45_k_tile<D, kQ5, decltype(ma)::value, decltype(pf)::value>(p, g, i0, pairs.data());
    });
}

}  // namespace
}  // namespace lowbit
