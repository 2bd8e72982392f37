// F32 / F16 / BF16 "quantization": plain element conversion, as ggml_quantize_chunk does it
// (round to nearest even; see core/fp16.h for the exact bit recipes).
#include <cstring>

#include "../core/fp16.h"
#include "ref.h"

namespace lowbit::ref {

void quantize_row_f32(const float* x, void* y, int64_t k, const float*) { std::memcpy(y, x, k * sizeof(float)); }
void dequantize_row_f32(const void* x, float* y, int64_t k) { std::memcpy(y, x, k * sizeof(float)); }

void quantize_row_f16(const float* x, void* y, int64_t k, const float*) {
    auto* out = static_cast<fp16_t*>(y);
    for (int64_t i = 0; i < k; ++i) out[i] = f32_to_fp16(x[i]);
}
void dequantize_row_f16(const void* x, float* y, int64_t k) {
    const auto* in = static_cast<const fp16_t*>(x);
    for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_f32(in[i]);
}

void quantize_row_bf16(const float* x, void* y, int64_t k, const float*) {
    auto* out = static_cast<bf16_t*>(y);
    for (int64_t i = 0; i < k; ++i) out[i] = f32_to_bf16(x[i]);
}
void dequantize_row_bf16(const void* x, float* y, int64_t k) {
    const auto* in = static_cast<const bf16_t*>(x);
    for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_f32(in[i]);
}

}  // namespace lowbit::ref
