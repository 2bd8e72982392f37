// Q4_K: super-blocks of 256 = 8 sub-blocks of 32, x = d*sc*q - dmin*m with q in [0, 15] and 6-bit
// sub-block scale sc and min m (packed as in get_scale_min_k4); d and dmin are fp16. qs: byte l of
// each 32-byte group holds value l (low nibble) and value l+32 (high nibble) of a 64-value chunk.
// Reference: make_qkx2_quants per sub-block with weights av_x + |x| (av_x = RMS of the sub-block);
// the largest scale and the largest min map to 63. Weighted path: make_qkx3_quants with weights
// qw*sqrt(sigma2 + x^2) (sigma2 = twice the mean square of the super-block), then make_qp_quants
// fits the 6-bit scales and mins. Both requantize every value against the stored scales.
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "kquant_k4_scales.h"
#include "kquant_pack.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
constexpr int kSub = 32;
constexpr int kNumSub = QK_K / kSub;

// Levels against the stored scales: q = clamp(round((x + dmin*m) / (d*sc)), 0, 15). A sub-block
// whose scale is 0 keeps the levels of its search.
void requantize_and_pack(const float* x, uint8_t* L, block_q4_K* y) {
    const float d_all = fp16_to_f32(y->d);
    const float m_all = fp16_to_f32(y->dmin);
    for (int j = 0; j < kNumSub; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, y->scales, &sc, &m);
        const float d = d_all * sc;
        if (!d) continue;
        const float dm = m_all * m;
        for (int i = 0; i < kSub; ++i) {
            const int l = nearest_int((x[kSub * j + i] + dm) / d);
            L[kSub * j + i] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
        }
    }
    for (int c = 0; c < QK_K / 64; ++c) {
        for (int l = 0; l < 32; ++l) {
            y->qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
        }
    }
}

void quantize_block_q4_k(const float* x, block_q4_K* y) {
    uint8_t L[QK_K];
    fit_k4_scales_plain(x, K4Grid{15, -1.f, 0.1f, 20}, L, y->scales, &y->d, &y->dmin);
    requantize_and_pack(x, L, y);
}

void quantize_block_q4_k_weighted(const float* x, block_q4_K* y, const float* qw) {
    uint8_t L[QK_K];
    // q5_K clamps the fitted 6-bit scales to 63; ggml's q4_K packs them as they are.
    fit_k4_scales_weighted(x, qw, 15, /*clamp63=*/false, L, y->scales, &y->d, &y->dmin);
    requantize_and_pack(x, L, y);
}
}  // namespace

void quantize_row_q4_k(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q4_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        if (imatrix) {
            quantize_block_q4_k_weighted(x + i * QK_K, y + i, imatrix + i * QK_K);
        } else {
            quantize_block_q4_k(x + i * QK_K, y + i);
        }
    }
}

void dequantize_row_q4_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        for (int j = 0; j < kNumSub; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            const float dl = d * sc;
            const float ml = min * m;
            const uint8_t* q = x[i].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);  // even sub-blocks in the low nibbles, odd in the high
            for (int l = 0; l < kSub; ++l) y[i * QK_K + kSub * j + l] = dl * ((q[l] >> shift) & 0xF) - ml;
        }
    }
}

}  // namespace lowbit::ref
