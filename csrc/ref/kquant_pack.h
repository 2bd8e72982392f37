// Bit packing shared by the K-quant formats (super-blocks of QK_K = 256 values).
// The setters reproduce ggml's packing expressions bit for bit, including what happens to a level
// that does not fit its field (it is truncated the same way), so a quantizer that lets an
// out-of-range level through still writes ggml's bytes.
#pragma once
#include <cstdint>

#include "../core/blocks.h"

namespace lowbit::ref {

// q4_K / q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes. Sub-blocks 0-3 keep theirs in
// the low 6 bits of bytes 0-3 (scale) and 4-7 (min); sub-blocks 4-7 put their low nibbles in bytes
// 8-11 and their top 2 bits in the spare high bits of bytes 0-7.
static inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// The inverse of get_scale_min_k4. Must be called for j = 0, 1, ..., 7 in order: sub-blocks 4-7
// OR their top bits into bytes that sub-blocks 0-3 assign.
static inline void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
}

// q3_K: sixteen 6-bit scales (stored biased by 32) in 12 bytes. Low nibbles: bytes 0-7, sub-block
// j in the low nibble of byte j%8 when j < 8, else the high one; top 2 bits: byte 8 + j%4, bit
// pair j/4.
static inline int get_scale_q3_k(int j, const uint8_t* scales) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// The inverse of get_scale_q3_k for a biased level l in [0, 63]; `scales` must start zeroed.
static inline void set_scale_q3_k(int j, int l, uint8_t* scales) {
    if (j < 8) {
        scales[j] = l & 0xF;
    } else {
        scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
    }
    scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
}

// q2_K / q3_K quants: 2 bits each. Each half of the super-block (128 values) uses 32 bytes; value
// e of the half sits in byte e%32 at bit pair e/32, so a byte holds values 32 apart.
static inline void pack_2bit_quants(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                 (L[j + l + 96] << 6));
        }
    }
}

static inline int get_2bit_quant(const uint8_t* qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Sum of squares in ggml's order (left to right); the K-quant importance weights derive sigma2
// from it per super-block, each type with its own scaling.
static inline float sum_squares(const float* x, int n) {
    float sum = 0;
    for (int j = 0; j < n; ++j) sum += x[j] * x[j];
    return sum;
}

}  // namespace lowbit::ref
