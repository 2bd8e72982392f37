#pragma once
// ggml's CPU transcendental functions (ggml-cpu/vec.h: ggml_v_expf, ggml_v_silu, and ggml_soft_max's
// f32 row), written once as scalar code so the forward pass rounds like llama.cpp. ggml_v_expf is a
// degree-5 polynomial with fused multiply-adds: std::fma gives the single rounding of the hardware FMA.
// The header is compiled by the generic TU (std::fma from libm) and the AVX2+FMA TU (one instruction);
// both give identical results. Everything here has internal linkage (see csrc/ref/common.h's note).
#include <cmath>
#include <cstdint>

#include "fp16.h"

namespace lowbit {
namespace {

// ggml_v_expf. v512: the AVX-512 variant (2^n applied by scalef after adding 1) instead of the AVX2 one
// (k*j + k with k = 2^n, exact exp for |n| > 126); they differ in the last bit for some inputs.
inline float ggml_expf(float x, bool v512) {
    const float r = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    float b = std::fma(-n, 0x1.62e4p-1f, x);
    b = std::fma(-n, 0x1.7f7d1cp-20f, b);
    const float u = b * b;
    const float p1 = std::fma(b, 0x1.0e4020p-7f, 0x1.573e2ep-5f);
    const float p2 = std::fma(b, 0x1.555e66p-3f, 0x1.fffdb6p-2f);
    const float inner = std::fma(p1, u, p2);
    if (!(std::fabs(n) <= 192.0f)) return std::isnan(n) ? n : (n <= 0 ? 0.0f : INFINITY);
    if (v512) return std::scalbn(std::fma(inner, u, std::fma(b, 0x1.ffffecp-1f, 1.0f)), int(n));
    if (std::fabs(n) > 126.0f) return float(std::exp(double(x)));
    const float j = std::fma(inner, u, b * 0x1.ffffecp-1f);
    const float k = std::scalbn(1.0f, int(n));
    return std::fma(k, j, k);
}

// ggml_v_silu: x / (1 + expf(-x)).
inline void ggml_silu_row(const float* x, float* y, int64_t n, bool v512) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + ggml_expf(-x[i], v512));
}

// One 16-lane chunk of ggml_soft_max's sum, starting at c: s[c..] = expf(s - mx) for the entries before
// `valid` (the lanes past it count as 0), tree-reduced in float32 as _mm512_reduce_add_ps does.
inline float ggml_softmax_chunk16(float* s, int64_t c, int64_t valid, float mx, bool v512) {
    float lane[16];
    for (int l = 0; l < 16; ++l) {
        lane[l] = c + l < valid ? ggml_expf(s[c + l] - mx, v512) : 0.0f;
        if (c + l < valid) s[c + l] = lane[l];
    }
    float t8[8], t4[4];
    for (int l = 0; l < 8; ++l) t8[l] = lane[8 + l] + lane[l];
    for (int l = 0; l < 4; ++l) t4[l] = t8[4 + l] + t8[l];
    const float t0 = t4[0] + t4[2], t1 = t4[1] + t4[3];
    return t0 + t1;
}

// One row of ggml_soft_max (masked entries at and after `valid` are -inf there and come out 0): e =
// expf(s - max); the sum taken in 16-lane chunks, each tree-reduced in float32 as _mm512_reduce_add_ps
// does, the chunk sums accumulated in float64 in order; then e * (float)(1 / sum). s: (n,) in place.
// round_f16: round the probabilities to f16 (ggml converts the f32 side of an f16 matmul, P @ V).
inline void ggml_softmax_row(float* s, int64_t n, int64_t valid, bool v512, bool round_f16) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < valid; ++i) mx = s[i] > mx ? s[i] : mx;
    double total = 0.0;
    for (int64_t c = 0; c < valid; c += 16) total += ggml_softmax_chunk16(s, c, valid, mx, v512);
    const float inv = float(1.0 / total);
    if (round_f16)
        for (int64_t i = 0; i < valid; ++i) s[i] = fp16_to_f32(f32_to_fp16(s[i] * inv));
    else
        for (int64_t i = 0; i < valid; ++i) s[i] *= inv;
    for (int64_t i = valid; i < n; ++i) s[i] = 0.0f;
}

}  // namespace
}  // namespace lowbit
