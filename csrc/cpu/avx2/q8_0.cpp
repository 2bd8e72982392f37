// Q8_0 with AVX2. Quantize: d = amax / 127, q = roundf(x / d) (half away from zero, emulated:
// see round_half_away_ps); an importance matrix is ignored, as in ggml. Dequantize: q * d.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void quantize_row_q8_0(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        float d;
        const __m256i q = quantize_q8_32(x + i * QK8_0, &d);
        y[i].d = float_to_half(d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
    }
}

void dequantize_row_q8_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_0*>(vx);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        store_i8x32_mul(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs)), d, y + i * QK8_0);
    }
}

}  // namespace lowbit::avx2
