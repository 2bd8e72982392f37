#include "iq4_common.h"

#include <cmath>

#include "../core/blocks.h"
#include "quant_search.h"

namespace lowbit::ref {

namespace {
// ggml searches candidate scales -kIq4Ntry..kIq4Ntry steps away from "max maps to level 0".
constexpr int kIq4Ntry = 7;

// Weighted sums of x against the levels chosen at inverse scale id; the fitted scale is
// sumqx/sumq2 and its error reduction sumqx^2/sumq2.
void iq4_fit_sums(const float* xb, const float* weight, float id, float& sumqx, float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int j = 0; j < kIq4Block; ++j) {
        const float al = id * xb[j];
        const float q = kvalues_iq4nl[iq4_nearest_level(al)];
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
}
}  // namespace

int iq4_nearest_level(float x) {
    const int8_t* val = kvalues_iq4nl;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    // Bisection keeps val[lo] <= x < val[hi] (a NaN only ever moves lo up, ending at 14/15).
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < val[mid]) hi = mid; else lo = mid;
    }
    return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

float iq4_sigma2(const float* x, int n) {
    float sum_x2 = 0;
    for (int j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 * (2.f / n);
}

void iq4_block_weights(const float* xb, const float* qw, float sigma2, float* weight) {
    if (qw) {
        for (int j = 0; j < kIq4Block; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    } else {
        for (int j = 0; j < kIq4Block; ++j) weight[j] = xb[j] * xb[j];
    }
}

float iq4_block_scale(const float* xb, const float* weight) {
    float amax = 0, max = 0;
    for (int j = 0; j < kIq4Block; ++j) {
        const float ax = std::fabs(xb[j]);
        if (ax > amax) { amax = ax; max = xb[j]; }
    }
    if (amax < kGroupMaxEps) return 0;
    // Start from the scale that maps the largest-magnitude value onto level 0 (-127), then try
    // moving that value to -127+itry; keep the least-squares scale with the largest sumqx^2/sumq2.
    float sumqx, sumq2;
    iq4_fit_sums(xb, weight, 1 / (-max / kvalues_iq4nl[0]), sumqx, sumq2);
    float d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -kIq4Ntry; itry <= kIq4Ntry; ++itry) {
        const float id = static_cast<float>(itry + kvalues_iq4nl[0]) / max;
        iq4_fit_sums(xb, weight, id, sumqx, sumq2);
        // cross-multiplied comparison (no division), exactly as ggml
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

void iq4_pack_nibbles(const uint8_t* L, uint8_t* qs, int n) {
    for (int i = 0; i < n / 32; ++i) {
        for (int j = 0; j < 16; ++j) qs[16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4);
    }
}

}  // namespace lowbit::ref
