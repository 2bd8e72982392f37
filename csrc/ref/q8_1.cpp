// Q8_1: q8_0 plus s = d * sum(q), the activation type of q4_1/q5_1 dot products (ggml's
// quantize_row_q8_1_ref). ggml has no dequantize for it; lowbit's is x = d*q.
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "ref.h"

namespace lowbit::ref {

void quantize_row_q8_1(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        const float* xb = x + i * QK8_1;
        float amax = 0;
        for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
            sum += y[i].qs[j];
        }
        y[i].s = f32_to_fp16(sum * d);
    }
}

void dequantize_row_q8_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_1*>(vx);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_1; ++j) y[i * QK8_1 + j] = x[i].qs[j] * d;
    }
}

}  // namespace lowbit::ref
