#include "kquant_k4_scales.h"

#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "kquant_pack.h"
#include "quant_search.h"

namespace lowbit::ref {

namespace {
constexpr int kSub = 32;
constexpr int kNumSub = QK_K / kSub;
}  // namespace

void fit_k4_scales_plain(const float* x, const K4Grid& grid, uint8_t* L, uint8_t* packed, fp16_t* d, fp16_t* dmin) {
    float mins[kNumSub], scales[kNumSub];
    float max_scale = 0, max_min = 0;  // the min is subtracted, so both are >= 0
    for (int j = 0; j < kNumSub; ++j) {
        const float* xs = x + kSub * j;
        float weights[kSub];
        uint8_t Laux[kSub];
        const float av_x = std::sqrt(sum_squares(xs, kSub) / kSub);
        for (int i = 0; i < kSub; ++i) weights[i] = av_x + std::fabs(xs[i]);
        scales[j] = make_qkx2_quants(kSub, grid.nmax, xs, weights, L + kSub * j, &mins[j], Laux, grid.rmin,
                                     grid.rdelta, grid.nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kNumSub; ++j) {
        // ggml narrows to uint8 before clamping to 63
        const uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
        const uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
        set_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), packed);
    }
    *d = f32_to_fp16(max_scale / 63.f);
    *dmin = f32_to_fp16(max_min / 63.f);
}

void fit_k4_scales_weighted(const float* x, const float* qw, int nmax, bool clamp63, uint8_t* L, uint8_t* packed,
                            fp16_t* d, fp16_t* dmin) {
    uint8_t Laux[kSub], Ls[kNumSub], Lm[kNumSub];
    float weights[kSub], sw[kNumSub], mins[kNumSub], scales[kNumSub];
    const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        for (int i = 0; i < kSub; ++i) {
            const float xi = x[kSub * j + i];
            weights[i] = qw[kSub * j + i] * std::sqrt(sigma2 + xi * xi);
        }
        float sumw = 0;
        for (int i = 0; i < kSub; ++i) sumw += weights[i];
        sw[j] = sumw;
        scales[j] = make_qkx3_quants(kSub, nmax, x + kSub * j, weights, L + kSub * j, &mins[j], Laux, -0.9f, 0.05f,
                                     36, false);
    }
    const float d_block = make_qp_quants(kNumSub, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(kNumSub, 63, mins, Lm, sw);
    for (int j = 0; j < kNumSub; ++j) {
        const uint8_t ls = clamp63 ? std::min<uint8_t>(63, Ls[j]) : Ls[j];
        const uint8_t lm = clamp63 ? std::min<uint8_t>(63, Lm[j]) : Lm[j];
        set_scale_min_k4(j, ls, lm, packed);
    }
    *d = f32_to_fp16(d_block);
    *dmin = f32_to_fp16(m_block);
}

}  // namespace lowbit::ref
