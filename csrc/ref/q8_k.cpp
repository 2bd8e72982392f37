// Q8_K: super-blocks of 256, x = d*q with f32 d and q in [-127, 127] (ggml moved from -128 to -127 to
// keep its IQ2_XXS SIMD dot product simple), plus bsums = the sum of each group of 16 q.
// The activation type of the K-quant dot products: no importance-weighted path.
// Rounding: the value of largest magnitude maps to -127 (iscale = -127/max), q = round-half-even.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/fp16.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
void quantize_block_q8_k(const float* x, block_q8_K* y) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j) {
        const float ax = std::fabs(x[j]);
        if (ax > amax) { amax = ax; max = x[j]; }
    }
    if (!amax) {
        // ggml leaves bsums unwritten here; zeros are what they sum to.
        std::memset(y, 0, sizeof(*y));
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y->qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += y->qs[16 * g + i];
        y->bsums[g] = static_cast<int16_t>(sum);
    }
    y->d = 1 / iscale;
}
}  // namespace

void quantize_row_q8_k(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) quantize_block_q8_k(x + i * QK_K, y + i);
}

void dequantize_row_q8_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        for (int j = 0; j < QK_K; ++j) y[i * QK_K + j] = x[i].d * x[i].qs[j];
    }
}

}  // namespace lowbit::ref
