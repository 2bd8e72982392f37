// Q2_K: super-blocks of 256 = 16 sub-blocks of 16, x = d*sc*q - dmin*m with q in [0, 3] and 4-bit
// sub-block scale sc and min m (one byte: sc low, m high); d and dmin are fp16.
// Reference: each sub-block gets a (scale, min) from make_qkx2_quants (weights |x|, mean absolute
// error); the largest scale and the largest min map to 15. Weighted path: make_qkx3_quants with
// weights qw*sqrt(sigma2 + x^2) (sigma2 = mean square of the super-block), then make_qp_quants
// fits the 4-bit scales and mins. Both then requantize every value against the stored scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/fp16.h"
#include "kquant_pack.h"
#include "quant_search.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
constexpr int kSub = 16;             // values per sub-block
constexpr int kNumSub = QK_K / kSub; // sub-blocks per super-block

// Levels against the stored scales: q = clamp(round((x + dmin*m) / (d*sc)), 0, 3). A sub-block
// whose scale is 0 keeps the levels of its search.
void requantize(const float* x, const block_q2_K& y, uint8_t* L) {
    const float d_all = fp16_to_f32(y.d);
    const float m_all = fp16_to_f32(y.dmin);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = d_all * (y.scales[j] & 0xF);
        if (!d) continue;
        const float dm = m_all * (y.scales[j] >> 4);
        for (int i = 0; i < kSub; ++i) {
            const int l = nearest_int((x[kSub * j + i] + dm) / d);
            L[kSub * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
        }
    }
}

void quantize_block_q2_k(const float* x, block_q2_K* y) {
    uint8_t L[QK_K], Laux[kSub];
    float weights[kSub], mins[kNumSub], scales[kNumSub];
    float max_scale = 0, max_min = 0;  // the min is subtracted, so both are >= 0
    for (int j = 0; j < kNumSub; ++j) {
        for (int i = 0; i < kSub; ++i) weights[i] = std::fabs(x[kSub * j + i]);
        scales[j] = make_qkx2_quants(kSub, 3, x + kSub * j, weights, L + kSub * j, &mins[j], Laux, -0.5f, 0.1f, 15,
                                     true);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float q4scale = 15.f;
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < kNumSub; ++j) y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        y->d = f32_to_fp16(max_scale / q4scale);
    } else {
        std::memset(y->scales, 0, sizeof(y->scales));
        y->d = f32_to_fp16(0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < kNumSub; ++j) {
            const unsigned l = static_cast<unsigned>(nearest_int(iscale * mins[j]));
            y->scales[j] |= static_cast<uint8_t>(l << 4);
        }
        y->dmin = f32_to_fp16(max_min / q4scale);
    } else {
        y->dmin = f32_to_fp16(0.f);
    }
    requantize(x, *y, L);
    pack_2bit_quants(L, y->qs);
}

void quantize_block_q2_k_weighted(const float* x, block_q2_K* y, const float* qw) {
    uint8_t L[QK_K], Laux[kSub], Ls[kNumSub], Lm[kNumSub];
    float weight[kSub], mins[kNumSub], scales[kNumSub], sw[kNumSub];
    const float sigma2 = sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        for (int i = 0; i < kSub; ++i) {
            const float xi = x[kSub * j + i];
            weight[i] = qw[kSub * j + i] * std::sqrt(sigma2 + xi * xi);
        }
        sw[j] = 0;
        for (int i = 0; i < kSub; ++i) sw[j] += weight[i];
        scales[j] = make_qkx3_quants(kSub, 3, x + kSub * j, weight, L + kSub * j, &mins[j], Laux, -0.9f, 0.05f, 36,
                                     false);
    }
    // The 4-bit scales and mins are fitted with the sub-blocks' total weights.
    const float dm = make_qp_quants(kNumSub, 15, scales, Ls, sw);
    const float mm = make_qp_quants(kNumSub, 15, mins, Lm, sw);
    y->d = f32_to_fp16(dm);
    y->dmin = f32_to_fp16(mm);
    for (int j = 0; j < kNumSub; ++j) y->scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    requantize(x, *y, L);
    pack_2bit_quants(L, y->qs);
}
}  // namespace

void quantize_row_q2_k(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q2_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        if (imatrix) {
            quantize_block_q2_k_weighted(x + i * QK_K, y + i, imatrix + i * QK_K);
        } else {
            quantize_block_q2_k(x + i * QK_K, y + i);
        }
    }
}

void dequantize_row_q2_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q2_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        for (int j = 0; j < kNumSub; ++j) {
            const float dl = d * (x[i].scales[j] & 0xF);
            const float ml = min * (x[i].scales[j] >> 4);
            for (int e = kSub * j; e < kSub * (j + 1); ++e) {
                y[i * QK_K + e] = dl * get_2bit_quant(x[i].qs, e) - ml;
            }
        }
    }
}

}  // namespace lowbit::ref
