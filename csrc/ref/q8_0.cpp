// Q8_0: blocks of 32, x = d*q, d = amax/127, q = roundf(x/d) (half away from zero). No weighted
// path in llama.cpp: an importance matrix is ignored.
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "ref.h"

namespace lowbit::ref {

void quantize_row_q8_0(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        const float* xb = x + i * QK8_0;
        float amax = 0;
        for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
    }
}

void dequantize_row_q8_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_0*>(vx);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = x[i].qs[j] * d;
    }
}

}  // namespace lowbit::ref
