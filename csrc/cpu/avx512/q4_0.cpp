// Q4_0 dequantize with AVX-512: each half of a block (16 low nibbles, 16 high nibbles) is one
// zmm. y = (q - 8) * d.
#include "avx512.h"
#include "simd_avx512.h"

namespace lowbit::avx512 {

void dequantize_row_q4_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_0*>(vx);
    const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < k / QK4_0; ++i) {
        const __m512 d = _mm512_set1_ps(half_to_float(x[i].d));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(b, m4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), m4), eight);
        _mm512_storeu_ps(y + i * QK4_0, _mm512_mul_ps(i8x16_ps(lo), d));
        _mm512_storeu_ps(y + i * QK4_0 + 16, _mm512_mul_ps(i8x16_ps(hi), d));
    }
}

}  // namespace lowbit::avx512
