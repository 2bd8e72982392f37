// Activation quantizers as ggml's CPU backend runs them inside mul_mat (its from_float for q8_0 and
// q8_1 on x86, ggml-cpu/arch/x86/quants.c), which differ from the storage reference in two ways:
// the multiplier is 127/amax rather than 1/(amax/127), and rounding is half-to-even (_mm256_round_ps)
// rather than roundf's half-away-from-zero. Matching them makes lowbit.matmul see the same int8
// activations as llama.cpp, so model outputs agree to float rounding, not just to quantization noise.
// (q8_K activations are quantize_row_q8_K_ref in ggml too: no separate version.)
#include <algorithm>
#include <cmath>

#include "../core/fp16.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
// One block of 32: returns d and writes q = rne(x * 127/amax), saturated to int8 like packs_epi16.
float quantize_act_block(const float* x, int8_t* q) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < 32; ++j) {
        const float v = std::nearbyint(x[j] * id);  // the default rounding mode: to nearest even
        q[j] = static_cast<int8_t>(std::max(-128.0f, std::min(127.0f, v)));
    }
    return d;
}
}  // namespace

void quantize_act_row_q8_0(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < k / QK8_0; ++i) y[i].d = f32_to_fp16(quantize_act_block(x + i * QK8_0, y[i].qs));
}

void quantize_act_row_q8_1(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        const float d = quantize_act_block(x + i * QK8_1, y[i].qs);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) sum += y[i].qs[j];
        y[i].d = f32_to_fp16(d);
        y[i].s = f32_to_fp16(d * static_cast<float>(sum));
    }
}

}  // namespace lowbit::ref
