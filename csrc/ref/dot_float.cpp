// f32 / f16 / bf16 dot products as ggml's scalar vec_dot_{f32,f16,bf16}: each product rounded to
// f32, the sum kept in double (ggml_float), rounded to f32 once at the end. f16 and bf16 activations
// are x rounded to that type (the dot type of f16 weights is f16, of bf16 weights bf16).
#include "../core/fp16.h"
#include "dot.h"

namespace lowbit::ref {

float vec_dot_f32(int64_t k, const void* vw, const void* va) {
    const auto* w = static_cast<const float*>(vw);
    const auto* a = static_cast<const float*>(va);
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += static_cast<double>(w[i] * a[i]);
    return static_cast<float>(sum);
}

float vec_dot_f16(int64_t k, const void* vw, const void* va) {
    const auto* w = static_cast<const fp16_t*>(vw);
    const auto* a = static_cast<const fp16_t*>(va);
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += static_cast<double>(fp16_to_f32(w[i]) * fp16_to_f32(a[i]));
    return static_cast<float>(sum);
}

float vec_dot_bf16(int64_t k, const void* vw, const void* va) {
    const auto* w = static_cast<const bf16_t*>(vw);
    const auto* a = static_cast<const bf16_t*>(va);
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += static_cast<double>(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
    return static_cast<float>(sum);
}

}  // namespace lowbit::ref
