// Q4_0: blocks of 32, x = d * (q - 8), q in [0, 15]. Reference rounding: d = max/-8 where max is the
// value of largest magnitude (so it maps to level 0), q = min(15, (int8)(x/d + 8.5)) (truncation).
// Importance-weighted path: make_qx_quants with weights qw*sqrt(sigma2 + x^2).
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "common.h"
#include "quant_search.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
void quantize_block_q4_0(const float* x, block_q4_0* y) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_0; ++j) {
        if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
        const float x0 = x[j] * id;
        const float x1 = x[QK4_0 / 2 + j] * id;
        const uint8_t q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
        const uint8_t q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
        y->qs[j] = q0 | (q1 << 4);
    }
}

void quantize_row_q4_0_weighted(const float* x, block_q4_0* y, int64_t k, const float* imatrix) {
    const float sigma2 = row_sigma2(x, k);
    float weight[QK4_0];
    int8_t L[QK4_0];
    for (int64_t ib = 0; ib < k / QK4_0; ++ib) {
        const float* xb = x + QK4_0 * ib;
        const float* qw = imatrix + QK4_0 * ib;
        for (int j = 0; j < QK4_0; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        const float d = make_qx_quants(QK4_0, 8, xb, L, 1, weight);
        y[ib].d = f32_to_fp16(d);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = L[j] | (L[j + 16] << 4);
    }
}
}  // namespace

void quantize_row_q4_0(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q4_0*>(vy);
    if (imatrix) return quantize_row_q4_0_weighted(x, y, k, imatrix);
    for (int64_t i = 0; i < k / QK4_0; ++i) quantize_block_q4_0(x + i * QK4_0, y + i);
}

void dequantize_row_q4_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_0*>(vx);
    for (int64_t i = 0; i < k / QK4_0; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[i * QK4_0 + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * QK4_0 + j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

}  // namespace lowbit::ref
