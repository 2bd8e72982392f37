// Q5_1: blocks of 32, x = d*q + m, q in [0, 31], bits laid out as in q5_0. Reference: m = min,
// d = (max-min)/31, q = (uint8)((x-m)/d + 0.5). Weighted: make_qkx3_quants.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "../core/fp16.h"
#include "common.h"
#include "quant_search.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
void pack_q5(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = (L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4);
        qh |= ((L[j] & 0x10u) >> 4) << j;
        qh |= ((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(qh_bytes, &qh, 4);
}

void quantize_block_q5_1(const float* x, block_q5_1* y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK5_1; ++j) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    y->m = f32_to_fp16(min);
    uint8_t L[QK5_1];
    // No clamp to 31 here, as in ggml: (max-min)/d rounds to at most 31.
    for (int j = 0; j < QK5_1; ++j) L[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
    pack_q5(L, y->qs, y->qh);
}

void quantize_row_q5_1_weighted(const float* x, block_q5_1* y, int64_t k, const float* imatrix) {
    const float sigma2 = row_sigma2(x, k);
    float weight[QK5_1];
    uint8_t L[QK5_1], Laux[QK5_1];
    for (int64_t ib = 0; ib < k / QK5_1; ++ib) {
        const float* xb = x + QK5_1 * ib;
        const float* qw = imatrix + QK5_1 * ib;
        for (int j = 0; j < QK5_1; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        float min;
        const float d = make_qkx3_quants(QK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[ib].d = f32_to_fp16(d);
        y[ib].m = f32_to_fp16(-min);
        pack_q5(L, y[ib].qs, y[ib].qh);
    }
}
}  // namespace

void quantize_row_q5_1(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q5_1*>(vy);
    if (imatrix) return quantize_row_q5_1_weighted(x, y, k, imatrix);
    for (int64_t i = 0; i < k / QK5_1; ++i) quantize_block_q5_1(x + i * QK5_1, y + i);
}

void dequantize_row_q5_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_1*>(vx);
    for (int64_t i = 0; i < k / QK5_1; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y[i * QK5_1 + j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[i * QK5_1 + j + QK5_1 / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

}  // namespace lowbit::ref
