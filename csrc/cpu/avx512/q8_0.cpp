// Q8_0 with AVX-512: one block is exactly two zmm. Same rounding as the reference: d = amax / 127,
// q = roundf(x * (1/d)) (half away from zero, emulated), dequantize q * d.
#include "avx512.h"
#include "simd_avx512.h"

namespace lowbit::avx512 {

void quantize_row_q8_0(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        const __m512 v0 = _mm512_loadu_ps(x + i * QK8_0), v1 = _mm512_loadu_ps(x + i * QK8_0 + 16);
        // |±0| = +0, and max is order-free: the reduction equals the reference's running max
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;  // a true division, as the reference
        y[i].d = float_to_half(d);
        const __m512 idv = _mm512_set1_ps(id);
        // vpmovdb keeps the low byte, as the reference's int8 conversion does (see avx2::low_byte_i8)
        const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_half_away_ps(_mm512_mul_ps(v0, idv))));
        const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_half_away_ps(_mm512_mul_ps(v1, idv))));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), q0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16), q1);
    }
}

void dequantize_row_q8_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_0*>(vx);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        const __m512 d = _mm512_set1_ps(half_to_float(x[i].d));
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16));
        _mm512_storeu_ps(y + i * QK8_0, _mm512_mul_ps(i8x16_ps(q0), d));
        _mm512_storeu_ps(y + i * QK8_0 + 16, _mm512_mul_ps(i8x16_ps(q1), d));
    }
}

}  // namespace lowbit::avx512
