// Weight panels for the many-row matmul kernels (AVX2 and AVX-512 both include this header).
//
// Every weight type is unpacked into one shape, so one micro-kernel per ISA serves all of them:
// per group of G values along k (G = the type's scale granularity: 32, or 16 for q2_K/q3_K/q6_K),
// a weight is w = scale * level + min, with an 8-bit level and f32 scale and min per (column, group).
// q4_0's x = d*(q-8) becomes level q, min -8d; q4_K's d*sc*q - dmin*m becomes level q, scale d*sc,
// min -dmin*m. The integer dot of the levels with the int8 activations stays exact; the min term
// needs only s = d_a * sum(a) per group, which the driver precomputes (GemmArgs::a_ds).
//
// Layout of a panel of NC columns (NC = the i32 lanes of one vector: 8 for ymm, 16 for zmm):
// per group, the levels as [G/4][NC][4] bytes (4 consecutive k of one column in one 32-bit lane: one
// maddubs+madd or vpdpbusd step covers 4 k of all NC columns against one broadcast activation
// dword), then NC f32 scales, then NC f32 mins. Missing columns of a last, partial panel are zero.
//
// Everything here has internal linkage: each ISA's translation unit gets its own copy compiled with
// its own flags, and the linker can never hand an AVX-512 copy to the AVX2 path.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../core/blocks.h"
#include "../../core/kernels.h"
#include "matmul_simd.h"

namespace lowbit {
namespace {

// ---- decoders: one block of one weight row -> levels (32-byte vectors), scales, mins ------------
// kSigned: levels are int8 (w = scale * level); else uint8 with the min term. kMaxLevel bounds the
// unsigned levels: AVX2's maddubs sums two u8*s8 products into int16, so it decides how many steps
// may add up in int16 before they must be widened. lv gets kBlock / 32 vectors, in k order.

struct DecQ5_0 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_0*>(blk);
        lv[0] = _mm256_or_si256(nibbles32(b->qs), bit4_from_bits32(b->qh));
        sc[0] = f16_to_f32(b->d);
        mn[0] = -16.0f * sc[0];
    }
};

struct DecQ5_1 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_1*>(blk);
        lv[0] = _mm256_or_si256(nibbles32(b->qs), bit4_from_bits32(b->qh));
        sc[0] = f16_to_f32(b->d);
        mn[0] = f16_to_f32(b->m);
    }
};

struct DecIQ4_NL {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 127;
    static constexpr bool kSigned = true;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_iq4_nl*>(blk);
        lv[0] = _mm256_shuffle_epi8(iq4_table(), nibbles32(b->qs));
        sc[0] = f16_to_f32(b->d);
        mn[0] = 0.0f;
    }
};

// 8 or 16 small integers (bytes) times a float -> f32, 8 at a time.
inline void scale_bytes(const int32_t* ints, int n, float f, float* out) {
    for (int i = 0; i < n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(
                                                    reinterpret_cast<const __m256i*>(ints + i))),
                                                _mm256_set1_ps(f)));
}
template <bool kSignedBytes>
inline void bytes_to_i32(const uint8_t* b, int n, int32_t* out) {
    for (int i = 0; i < n; i += 8) {
        const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                            kSignedBytes ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
    }
}

struct DecQ2_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 3;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q2_K*>(blk);
        for (int h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * h));
            for (int p = 0; p < 4; ++p) lv[4 * h + p] = bits2(v, p);
        }
        alignas(16) uint8_t s[16], m[16];
        for (int j = 0; j < 16; ++j) {
            s[j] = b->scales[j] & 0xF;
            m[j] = b->scales[j] >> 4;
        }
        alignas(32) int32_t i32[16];
        bytes_to_i32<false>(s, 16, i32);
        scale_bytes(i32, 16, f16_to_f32(b->d), sc);
        bytes_to_i32<false>(m, 16, i32);
        scale_bytes(i32, 16, -f16_to_f32(b->dmin), mn);
    }
};

struct DecQ3_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 7;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q3_K*>(blk);
        const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->hmask)), one = _mm256_set1_epi8(1);
        for (int h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * h));
            for (int p = 0; p < 4; ++p) {  // level = 2 bits | hmask bit << 2 = value + 4
                const int e = 4 * h + p;
                const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, e), one), 2);
                lv[e] = _mm256_or_si256(bits2(v, p), hb);
            }
        }
        alignas(16) uint8_t s[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(s), _mm_sub_epi8(q3_k_scales(b->scales), _mm_set1_epi8(32)));
        alignas(32) int32_t i32[16];
        bytes_to_i32<true>(s, 16, i32);
        const float d = f16_to_f32(b->d);
        scale_bytes(i32, 16, d, sc);
        scale_bytes(i32, 16, -4.0f * d, mn);
    }
};

// q4_K / q5_K: 64 values per 32 bytes of qs (low nibbles first), 6-bit scales and mins per 32.
inline void k4_decode(const uint8_t* qs, const uint8_t* scales, fp16_t d16, fp16_t dmin16, __m256i* lv, float* sc,
                      float* mn) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; ++c) {
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        lv[2 * c] = _mm256_and_si256(bits, low);
        lv[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low);
    }
    const __m128i v = k4_scales(scales);
    _mm256_storeu_ps(sc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), _mm256_set1_ps(f16_to_f32(d16))));
    _mm256_storeu_ps(mn, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(v, v))),
                                       _mm256_set1_ps(-f16_to_f32(dmin16))));
}

struct DecQ4_K {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 15;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q4_K*>(blk);
        k4_decode(b->qs, b->scales, b->d, b->dmin, lv, sc, mn);
    }
};

struct DecQ5_K {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_K*>(blk);
        k4_decode(b->qs, b->scales, b->d, b->dmin, lv, sc, mn);
        const __m256i hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh)), one = _mm256_set1_epi8(1);
        for (int e = 0; e < 8; ++e)  // bit e of qh[l]: the 5th bit of value 32e + l
            lv[e] = _mm256_or_si256(lv[e], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, e), one), 4));
    }
};

struct DecQ6_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 63;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q6_K*>(blk);
        q6_k_levels(b->ql, b->qh, lv);
        q6_k_levels(b->ql + 64, b->qh + 32, lv + 4);
        alignas(32) int32_t i32[16];
        bytes_to_i32<true>(reinterpret_cast<const uint8_t*>(b->scales), 16, i32);
        const float d = f16_to_f32(b->d);
        scale_bytes(i32, 16, d, sc);
        scale_bytes(i32, 16, -32.0f * d, mn);
    }
};

struct DecIQ4_XS {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 127;
    static constexpr bool kSigned = true;
    static void decode(const uint8_t* blk, __m256i* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_iq4_xs*>(blk);
        const __m256i table = iq4_table();
        for (int g = 0; g < 8; ++g) lv[g] = _mm256_shuffle_epi8(table, nibbles32(b->qs + 16 * g));
        const float d = f16_to_f32(b->d);
        for (int g = 0; g < 8; ++g) {
            const int ls = ((b->scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((b->scales_h >> (2 * g)) & 3) << 4);
            sc[g] = d * static_cast<float>(ls - 32);
            mn[g] = 0.0f;
        }
    }
};

// ---- panels ----------------------------------------------------------------------------------

template <int NC, int G>
struct Panel {
    static constexpr int64_t kLevelBytes = static_cast<int64_t>(G) * NC;
    static constexpr int64_t kGroupBytes = kLevelBytes + 2 * NC * static_cast<int64_t>(sizeof(float));
    static int64_t bytes(int64_t k) { return k / G * kGroupBytes; }
};

// 8 vectors of 8 dwords, transposed: r[t] gets dword t of every input (the unpack / shuffle /
// permute network of an 8x8 f32 transpose).
inline void transpose8x8_epi32(__m256i* v) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(v[i]);
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
        v[i] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[4 + i], 0x20));
        v[4 + i] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[4 + i], 0x31));
    }
}

// The scales and mins of one block, [column][group] -> each group's NC scales then NC mins. With 8 or
// more groups per block (K-quants) 8 x 8 transposes do it, else plain stores.
template <class P, int NC, int kGroups>
void store_scales(const float (*sc)[kGroups], const float (*mn)[kGroups], uint8_t* blk_panel) {
    if constexpr (kGroups % 8 == 0) {
        for (int m = 0; m < 2; ++m)
            for (int c0 = 0; c0 < NC; c0 += 8)
                for (int q0 = 0; q0 < kGroups; q0 += 8) {
                    __m256i r[8];
                    for (int i = 0; i < 8; ++i)
                        r[i] = _mm256_castps_si256(_mm256_load_ps((m ? mn : sc)[c0 + i] + q0));
                    transpose8x8_epi32(r);
                    for (int t = 0; t < 8; ++t)
                        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk_panel + (q0 + t) * P::kGroupBytes +
                                                                       P::kLevelBytes + (m * NC + c0) * 4),
                                            r[t]);
                }
    } else {
        for (int q = 0; q < kGroups; ++q) {
            auto* fs = reinterpret_cast<float*>(blk_panel + q * P::kGroupBytes + P::kLevelBytes);
            for (int c = 0; c < NC; ++c) {
                fs[c] = sc[c][q];
                fs[NC + c] = mn[c][q];
            }
        }
    }
}

// Unpacks `cols` (<= NC) weight rows of k values into one panel. Per block: decode each row into
// vectors of 32 levels, then 8 rows at a time a dword transpose turns 8 row-vectors into the 8
// steps of 4 k that the panel stores contiguously. kToUnsigned: signed levels are stored as
// level + 128 (flip of the sign bit) with min -128*scale, for vpdpbusd's u8 operand. Missing
// columns get zero levels, scales and mins.
template <class Dec, int NC, bool kToUnsigned>
void build_panel(const uint8_t* w, int64_t w_row_bytes, int cols, int64_t k, uint8_t* panel) {
    using P = Panel<NC, Dec::kGroup>;
    constexpr int G = Dec::kGroup, kVecs = Dec::kBlock / 32, kGroups = Dec::kBlock / G;
    constexpr bool kFlip = Dec::kSigned && kToUnsigned;
    const int64_t blocks = k / Dec::kBlock, block_bytes = w_row_bytes / blocks;
    __m256i lv[NC][kVecs];
    alignas(32) float sc[NC][kGroups], mn[NC][kGroups];
    for (int c = cols; c < NC; ++c) {
        for (int v = 0; v < kVecs; ++v) lv[c][v] = _mm256_setzero_si256();
        for (int q = 0; q < kGroups; ++q) sc[c][q] = mn[c][q] = 0.0f;
    }
    for (int64_t b = 0; b < blocks; ++b) {
        for (int c = 0; c < cols; ++c) {
            Dec::decode(w + c * w_row_bytes + b * block_bytes, lv[c], sc[c], mn[c]);
            if (kFlip) {
                for (int v = 0; v < kVecs; ++v) lv[c][v] = _mm256_xor_si256(lv[c][v], _mm256_set1_epi8(-128));
                for (int q = 0; q < kGroups; ++q) mn[c][q] = -128.0f * sc[c][q];
            }
        }
        for (int v = 0; v < kVecs; ++v)
            for (int c0 = 0; c0 < NC; c0 += 8) {
                __m256i r[8];
                for (int i = 0; i < 8; ++i) r[i] = lv[c0 + i][v];
                transpose8x8_epi32(r);
                for (int t = 0; t < 8; ++t) {  // k offset within the block: 32 v + 4 t
                    const int e = 32 * v + 4 * t;
                    uint8_t* dst = panel + (b * kGroups + e / G) * P::kGroupBytes + ((e % G) / 4) * NC * 4 + c0 * 4;
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), r[t]);
                }
            }
        store_scales<P, NC, kGroups>(sc, mn, panel + b * kGroups * P::kGroupBytes);
    }
}

// ---- activation rows: where group g's int8 quants start, and its {d, s} from GemmArgs::a_ds ----

struct ActQ8_0 {
    static constexpr int kDsGroup = 32;   // values per {d, s} pair of a_ds
    static constexpr int kGroupsPerD = 1;  // consecutive panel groups sharing one d_a
    static const int8_t* qs(const uint8_t* row, int64_t g) {
        return reinterpret_cast<const int8_t*>(row + g * sizeof(block_q8_0) + 2);
    }
    static void ds(const float* row_ds, int64_t g, float* d, float* s) {
        *d = row_ds[2 * g];
        *s = row_ds[2 * g + 1];
    }
};

struct ActQ8_1 {
    static constexpr int kDsGroup = 32;
    static constexpr int kGroupsPerD = 1;
    static const int8_t* qs(const uint8_t* row, int64_t g) {
        return reinterpret_cast<const int8_t*>(row + g * sizeof(block_q8_1) + 4);
    }
    static void ds(const float* row_ds, int64_t g, float* d, float* s) {
        *d = row_ds[2 * g];
        *s = row_ds[2 * g + 1];
    }
};

// q8_K: a_ds holds one pair per 16 values; a group of 32 adds two sums.
template <int G>
struct ActQ8_K {
    static constexpr int kDsGroup = 16;
    static constexpr int kGroupsPerD = QK_K / G;  // one f32 d per super-block
    static const int8_t* qs(const uint8_t* row, int64_t g) {
        constexpr int per = QK_K / G;
        return reinterpret_cast<const int8_t*>(row + (g / per) * sizeof(block_q8_K) + 4 + (g % per) * G);
    }
    static void ds(const float* row_ds, int64_t g, float* d, float* s) {
        if (G == 16) {
            *d = row_ds[2 * g];
            *s = row_ds[2 * g + 1];
        } else {
            *d = row_ds[4 * g];
            *s = row_ds[4 * g + 1] + row_ds[4 * g + 3];
        }
    }
};

}  // namespace
}  // namespace lowbit
