// Q8_1 with AVX2: the q8_0 rounding plus s = fp16(d * sum(q)) (ggml's quantize_row_q8_1_ref).
// Dequantize (lowbit's; ggml has none): q * d.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void quantize_row_q8_1(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        float d;
        const __m256i q = quantize_q8_32(x + i * QK8_1, &d);
        y[i].d = float_to_half(d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
        // the reference's int sum converted to float (exact, |sum| <= 4064), then times d
        y[i].s = float_to_half(static_cast<float>(hsum_i8x32(q)) * d);
    }
}

void dequantize_row_q8_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_1*>(vx);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        store_i8x32_mul(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)), d, y + i * QK8_1);
    }
}

}  // namespace lowbit::avx2
