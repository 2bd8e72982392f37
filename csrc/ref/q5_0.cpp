// Q5_0: blocks of 32, x = d*(q - 16), q in [0, 31]: low nibbles as in q4_0, 5th bits in qh (bit j
// for x[j]). Reference: d = max/-16, q = min(31, (int8)(x/d + 16.5)). Weighted: make_qx_quants.
#include <algorithm>
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

void quantize_block_q5_0(const float* x, block_q5_0* y) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK5_0; ++j) {
        if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    uint8_t L[QK5_0];
    for (int j = 0; j < QK5_0; ++j)
        L[j] = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
    pack_q5(L, y->qs, y->qh);
}

void quantize_row_q5_0_weighted(const float* x, block_q5_0* y, int64_t k, const float* imatrix) {
    const float sigma2 = row_sigma2(x, k);
    float weight[QK5_0];
    int8_t L[QK5_0];
    for (int64_t ib = 0; ib < k / QK5_0; ++ib) {
        const float* xb = x + QK5_0 * ib;
        const float* qw = imatrix + QK5_0 * ib;
        for (int j = 0; j < QK5_0; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        const float d = make_qx_quants(QK5_0, 16, xb, L, 1, weight);
        y[ib].d = f32_to_fp16(d);
        pack_q5(reinterpret_cast<const uint8_t*>(L), y[ib].qs, y[ib].qh);
    }
}
}  // namespace

void quantize_row_q5_0(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q5_0*>(vy);
    if (imatrix) return quantize_row_q5_0_weighted(x, y, k, imatrix);
    for (int64_t i = 0; i < k / QK5_0; ++i) quantize_block_q5_0(x + i * QK5_0, y + i);
}

void dequantize_row_q5_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_0*>(vx);
    for (int64_t i = 0; i < k / QK5_0; ++i) {
        const float d = fp16_to_f32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y[i * QK5_0 + j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[i * QK5_0 + j + QK5_0 / 2] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

}  // namespace lowbit::ref
