// IQ4_XS: super-blocks of 256 = 8 sub-blocks of 32, x = d * (ls - 32) * kvalues_iq4nl[q].
// d is fp16; ls is a 6-bit sub-block scale split as scales_l (low nibbles, two per byte, even
// sub-block low) and scales_h (2 bits per sub-block, sub-block ib at bits 2*ib); the 4-bit indices
// q are laid out per sub-block as iq4_nl's.
// Rounding: each sub-block gets the iq4_nl least-squares scale (weights x^2, or
// imatrix*sqrt(sigma2 + x^2) with sigma2 over the super-block); d = -max_scale/32 where max_scale
// is the sub-block scale of largest magnitude; ls = 32 + clamp(nearest_int(scale/d), -32, 31);
// indices are re-chosen against the unrounded d*(ls-32) (ggml's quantize_iq4_xs).
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "iq4_common.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
constexpr int kSubBlocks = QK_K / kIq4Block;

// First pass: the free float scale of every sub-block; returns the one of largest magnitude.
float iq4_xs_sub_scales(const float* x, const float* qw, float* scales) {
    const float sigma2 = iq4_sigma2(x, QK_K);
    float weight[kIq4Block];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < kSubBlocks; ++ib) {
        const float* xb = x + ib * kIq4Block;
        iq4_block_weights(xb, qw ? qw + ib * kIq4Block : nullptr, sigma2, weight);
        scales[ib] = iq4_block_scale(xb, weight);
        if (std::fabs(scales[ib]) > amax_scale) { amax_scale = std::fabs(scales[ib]); max_scale = scales[ib]; }
    }
    return max_scale;
}

void quantize_block_iq4_xs(const float* x, block_iq4_xs* y, const float* qw) {
    float scales[kSubBlocks];
    // max_scale maps to -32 (level range [-32, 31]); an all-zero block gives d = -0.0 (fp16 0x8000).
    const float d = -iq4_xs_sub_scales(x, qw, scales) / 32;
    y->d = f32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    y->scales_h = 0;
    uint8_t L[QK_K];
    for (int ib = 0; ib < kSubBlocks; ++ib) {
        const int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
        const float dl = d * l;
        const float idl = dl ? 1 / dl : 0.f;
        const float* xb = x + ib * kIq4Block;
        for (int j = 0; j < kIq4Block; ++j) L[ib * kIq4Block + j] = iq4_nearest_level(idl * xb[j]);
        const int ls = l + 32;
        if (ib % 2 == 0) y->scales_l[ib / 2] = ls & 0xf;
        else y->scales_l[ib / 2] |= (ls & 0xf) << 4;
        y->scales_h |= (ls >> 4) << (2 * ib);
    }
    iq4_pack_nibbles(L, y->qs, QK_K);
}
}  // namespace

void quantize_row_iq4_xs(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_iq4_xs*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        quantize_block_iq4_xs(x + i * QK_K, y + i, imatrix ? imatrix + i * QK_K : nullptr);
    }
}

void dequantize_row_iq4_xs(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_iq4_xs*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int ib = 0; ib < kSubBlocks; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d * (ls - 32);
            const uint8_t* qs = x[i].qs + 16 * ib;
            float* yb = y + i * QK_K + ib * kIq4Block;
            for (int j = 0; j < 16; ++j) {
                yb[j] = dl * kvalues_iq4nl[qs[j] & 0xf];
                yb[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

}  // namespace lowbit::ref
