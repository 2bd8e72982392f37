// Q4_1: blocks of 32, x = d*q + m, q in [0, 15]. Reference: m = min, d = (max-min)/15,
// q = min(15, (int8)((x-m)/d + 0.5)). Importance-weighted path: make_qkx3_quants (the stored
// m is the negated search min).
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "../core/fp16.h"
#include "common.h"
#include "quant_search.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
void quantize_block_q4_1(const float* x, block_q4_1* y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK4_1; ++j) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    y->m = f32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
        const float x0 = (x[j] - min) * id;
        const float x1 = (x[QK4_1 / 2 + j] - min) * id;
        const uint8_t q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 0.5f)));
        const uint8_t q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 0.5f)));
        y->qs[j] = q0 | (q1 << 4);
    }
}

void quantize_row_q4_1_weighted(const float* x, block_q4_1* y, int64_t k, const float* imatrix) {
    const float sigma2 = row_sigma2(x, k);
    float weight[QK4_1];
    uint8_t L[QK4_1], Laux[QK4_1];
    for (int64_t ib = 0; ib < k / QK4_1; ++ib) {
        const float* xb = x + QK4_1 * ib;
        const float* qw = imatrix + QK4_1 * ib;
        for (int j = 0; j < QK4_1; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        float min;
        const float d = make_qkx3_quants(QK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[ib].d = f32_to_fp16(d);
        y[ib].m = f32_to_fp16(-min);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = L[j] | (L[j + 16] << 4);
    }
}
}  // namespace

void quantize_row_q4_1(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q4_1*>(vy);
    if (imatrix) return quantize_row_q4_1_weighted(x, y, k, imatrix);
    for (int64_t i = 0; i < k / QK4_1; ++i) quantize_block_q4_1(x + i * QK4_1, y + i);
}

void dequantize_row_q4_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_1*>(vx);
    for (int64_t i = 0; i < k / QK4_1; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[i * QK4_1 + j] = (x[i].qs[j] & 0x0F) * d + m;
            y[i * QK4_1 + j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

}  // namespace lowbit::ref
