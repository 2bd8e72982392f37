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

namespace lowbit {
namespace {

inline float f16_to_f32(fp16_t h) { return _cvtsh_ss(h); }

// ---- decoders: one block of one weight row -> levels, scales, mins --------------------------------
// kSigned: levels are int8 (w = scale * level); else uint8 with the min term. kMaxLevel bounds the
// unsigned levels: AVX2's maddubs sums two u8*s8 products into int16, so it decides how many steps
// may add up in int16 before they must be widened.

struct DecQ4_0 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 15;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q4_0*>(blk);
        for (int j = 0; j < 16; ++j) {
            lv[j] = b->qs[j] & 0xF;
            lv[j + 16] = b->qs[j] >> 4;
        }
        sc[0] = f16_to_f32(b->d);
        mn[0] = -8.0f * sc[0];
    }
};

struct DecQ4_1 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 15;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q4_1*>(blk);
        for (int j = 0; j < 16; ++j) {
            lv[j] = b->qs[j] & 0xF;
            lv[j + 16] = b->qs[j] >> 4;
        }
        sc[0] = f16_to_f32(b->d);
        mn[0] = f16_to_f32(b->m);
    }
};

// q5_0 / q5_1: bit j of qh is the 5th bit of value j.
inline void q5_levels(const uint8_t* qs, const uint8_t* qh4, uint8_t* lv) {
    uint32_t qh;
    std::memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; ++j) {
        lv[j] = static_cast<uint8_t>((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
        lv[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
}

struct DecQ5_0 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_0*>(blk);
        q5_levels(b->qs, b->qh, lv);
        sc[0] = f16_to_f32(b->d);
        mn[0] = -16.0f * sc[0];
    }
};

struct DecQ5_1 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_1*>(blk);
        q5_levels(b->qs, b->qh, lv);
        sc[0] = f16_to_f32(b->d);
        mn[0] = f16_to_f32(b->m);
    }
};

struct DecQ8_0 {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 127;
    static constexpr bool kSigned = true;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q8_0*>(blk);
        std::memcpy(lv, b->qs, 32);
        sc[0] = f16_to_f32(b->d);
        mn[0] = 0.0f;
    }
};

struct DecIQ4_NL {
    static constexpr int kBlock = 32, kGroup = 32, kMaxLevel = 127;
    static constexpr bool kSigned = true;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_iq4_nl*>(blk);
        for (int j = 0; j < 16; ++j) {
            lv[j] = static_cast<uint8_t>(kvalues_iq4nl[b->qs[j] & 0xF]);
            lv[j + 16] = static_cast<uint8_t>(kvalues_iq4nl[b->qs[j] >> 4]);
        }
        sc[0] = f16_to_f32(b->d);
        mn[0] = 0.0f;
    }
};

// 2-bit fields of q2_K / q3_K: value e of each 128 sits in byte e%32 of its 32, bit pair (e%128)/32.
inline void k_2bit_levels(const uint8_t* qs, uint8_t* lv) {
    for (int h = 0; h < 2; ++h)
        for (int p = 0; p < 4; ++p)
            for (int l = 0; l < 32; ++l) lv[128 * h + 32 * p + l] = (qs[32 * h + l] >> (2 * p)) & 3;
}

struct DecQ2_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 3;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q2_K*>(blk);
        k_2bit_levels(b->qs, lv);
        const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
        for (int j = 0; j < 16; ++j) {
            sc[j] = d * (b->scales[j] & 0xF);
            mn[j] = -dmin * (b->scales[j] >> 4);
        }
    }
};

struct DecQ3_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 7;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q3_K*>(blk);
        k_2bit_levels(b->qs, lv);
        for (int e = 0; e < QK_K; ++e) lv[e] |= ((b->hmask[e % 32] >> (e / 32)) & 1) << 2;  // level - 4 = value
        const float d = f16_to_f32(b->d);
        for (int j = 0; j < 16; ++j) {
            const int low = j < 8 ? b->scales[j] & 0xF : b->scales[j - 8] >> 4;
            const int high = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = d * static_cast<float>((low | (high << 4)) - 32);
            mn[j] = -4.0f * sc[j];
        }
    }
};

// q4_K / q5_K: 64 values per 32 bytes of qs (low nibbles first), 6-bit scales and mins.
inline void k4_levels_scales(const uint8_t* qs, const uint8_t* scales, fp16_t d16, fp16_t dmin16, uint8_t* lv,
                             float* sc, float* mn) {
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
            lv[64 * c + l] = qs[32 * c + l] & 0xF;
            lv[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
    const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
    for (int j = 0; j < 8; ++j) {
        const int s = j < 4 ? scales[j] & 63 : (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        const int m = j < 4 ? scales[j + 4] & 63 : (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
        sc[j] = d * static_cast<float>(s);
        mn[j] = -dmin * static_cast<float>(m);
    }
}

struct DecQ4_K {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 15;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q4_K*>(blk);
        k4_levels_scales(b->qs, b->scales, b->d, b->dmin, lv, sc, mn);
    }
};

struct DecQ5_K {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 31;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q5_K*>(blk);
        k4_levels_scales(b->qs, b->scales, b->d, b->dmin, lv, sc, mn);
        for (int e = 0; e < QK_K; ++e) lv[e] |= ((b->qh[e % 32] >> (e / 32)) & 1) << 4;
    }
};

struct DecQ6_K {
    static constexpr int kBlock = QK_K, kGroup = 16, kMaxLevel = 63;
    static constexpr bool kSigned = false;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_q6_K*>(blk);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = b->ql + 64 * h;
            const uint8_t* qh = b->qh + 32 * h;
            uint8_t* o = lv + 128 * h;
            for (int l = 0; l < 32; ++l) {
                o[l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
                o[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                o[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                o[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        const float d = f16_to_f32(b->d);
        for (int j = 0; j < 16; ++j) {
            sc[j] = d * static_cast<float>(b->scales[j]);
            mn[j] = -32.0f * sc[j];
        }
    }
};

struct DecIQ4_XS {
    static constexpr int kBlock = QK_K, kGroup = 32, kMaxLevel = 127;
    static constexpr bool kSigned = true;
    static void decode(const uint8_t* blk, uint8_t* lv, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const block_iq4_xs*>(blk);
        for (int g = 0; g < 8; ++g)
            for (int j = 0; j < 16; ++j) {
                lv[32 * g + j] = static_cast<uint8_t>(kvalues_iq4nl[b->qs[16 * g + j] & 0xF]);
                lv[32 * g + j + 16] = static_cast<uint8_t>(kvalues_iq4nl[b->qs[16 * g + j] >> 4]);
            }
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

// Unpacks `cols` (<= NC) weight rows of k values into one panel. kToUnsigned: signed levels are
// stored as level + 128 (flip of the sign bit) with min -128*scale, for vpdpbusd's u8 operand.
template <class Dec, int NC, bool kToUnsigned>
void build_panel(const uint8_t* w, int64_t w_row_bytes, int cols, int64_t k, uint8_t* panel) {
    using P = Panel<NC, Dec::kGroup>;
    constexpr int G = Dec::kGroup, kGroups = Dec::kBlock / G;
    const int64_t blocks = k / Dec::kBlock, block_bytes = w_row_bytes / blocks;
    if (cols < NC) std::memset(panel, 0, static_cast<size_t>(P::bytes(k)));
    alignas(64) uint8_t lv[Dec::kBlock];
    float sc[kGroups], mn[kGroups];
    for (int c = 0; c < cols; ++c) {
        const uint8_t* row = w + c * w_row_bytes;
        for (int64_t b = 0; b < blocks; ++b) {
            Dec::decode(row + b * block_bytes, lv, sc, mn);
            if (Dec::kSigned && kToUnsigned)
                for (int e = 0; e < Dec::kBlock; ++e) lv[e] ^= 0x80;
            for (int q = 0; q < kGroups; ++q) {
                uint8_t* g = panel + (b * kGroups + q) * P::kGroupBytes;
                for (int t = 0; t < G / 4; ++t) std::memcpy(g + (t * NC + c) * 4, lv + q * G + 4 * t, 4);
                auto* fs = reinterpret_cast<float*>(g + P::kLevelBytes);
                fs[c] = sc[q];
                fs[NC + c] = (Dec::kSigned && kToUnsigned) ? -128.0f * sc[q] : mn[q];
            }
        }
    }
}

// ---- activation rows: where group g's int8 quants start, and its {d, s} from GemmArgs::a_ds ----

struct ActQ8_0 {
    static constexpr int kDsGroup = 32;  // values per {d, s} pair of a_ds
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
