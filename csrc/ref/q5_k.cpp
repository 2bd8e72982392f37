// Q5_K: as Q4_K with q in [0, 31]: the low 4 bits in qs (layout of q4_K), the 5th bit of value
// 32*s + l (sub-block s) in bit s of qh[l]. x = d*sc*q - dmin*m.
// Reference: make_qkx2_quants per sub-block with weights av_x + |x| (av_x = RMS of the sub-block),
// a narrower grid than q4_K; the largest scale and min map to 63. Weighted path: make_qkx3_quants
// with weights qw*sqrt(sigma2 + x^2) (sigma2 = twice the mean square of the super-block), then
// make_qp_quants fits the 6-bit scales and mins. Both requantize every value against the stored
// scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/fp16.h"
#include "kquant_k4_scales.h"
#include "kquant_pack.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
constexpr int kSub = 32;
constexpr int kNumSub = QK_K / kSub;

// Levels against the stored scales: q = clamp(round((x + dmin*m) / (d*sc)), 0, 31). A sub-block
// whose scale is 0 keeps the levels of its search.
void requantize_and_pack(const float* x, uint8_t* L, block_q5_K* y) {
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
            L[kSub * j + i] = static_cast<uint8_t>(std::max(0, std::min(31, l)));
        }
    }
    std::memset(y->qh, 0, sizeof(y->qh));
    for (int j = 0; j < kNumSub; ++j) {
        const int shift = 4 * (j % 2);  // even sub-blocks in the low nibbles, odd in the high
        uint8_t* ql = y->qs + 32 * (j / 2);
        if (shift == 0) std::memset(ql, 0, 32);
        for (int l = 0; l < kSub; ++l) {
            const int q = L[kSub * j + l];
            ql[l] |= static_cast<uint8_t>((q & 0xF) << shift);
            if (q > 15) y->qh[l] |= static_cast<uint8_t>(1u << j);
        }
    }
}

void quantize_block_q5_k(const float* x, block_q5_K* y) {
    uint8_t L[QK_K];
    fit_k4_scales_plain(x, K4Grid{31, -0.5f, 0.1f, 15}, L, y->scales, &y->d, &y->dmin);
    requantize_and_pack(x, L, y);
}

void quantize_block_q5_k_weighted(const float* x, block_q5_K* y, const float* qw) {
    uint8_t L[QK_K];
    // q5_K clamps the fitted 6-bit scales to 63; ggml's q4_K packs them as they are.
    fit_k4_scales_weighted(x, qw, 31, /*clamp63=*/true, L, y->scales, &y->d, &y->dmin);
    requantize_and_pack(x, L, y);
}
}  // namespace

void quantize_row_q5_k(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q5_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        if (imatrix) {
            quantize_block_q5_k_weighted(x + i * QK_K, y + i, imatrix + i * QK_K);
        } else {
            quantize_block_q5_k(x + i * QK_K, y + i);
        }
    }
}

void dequantize_row_q5_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        for (int j = 0; j < kNumSub; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            const float dl = d * sc;
            const float ml = min * m;
            const uint8_t* ql = x[i].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < kSub; ++l) {
                const int q = ((ql[l] >> shift) & 0xF) + ((x[i].qh[l] >> j) & 1 ? 16 : 0);
                y[i * QK_K + kSub * j + l] = dl * q - ml;
            }
        }
    }
}

}  // namespace lowbit::ref
