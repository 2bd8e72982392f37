// IQ4_NL dequantize with AVX2: y = d * kvalues_iq4nl[q]; the 16-entry table fits one pshufb.
// Nibble layout as q4_0 (byte j: x[j] low, x[j+16] high).
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void dequantize_row_iq4_nl(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_iq4_nl*>(vx);
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < k / QK4_NL; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
        store_i8x16_mul(_mm_shuffle_epi8(table, _mm_and_si128(b, m4)), d, y);
        store_i8x16_mul(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(b, 4), m4)), d, y + 16);
        y += QK4_NL;
    }
}

}  // namespace lowbit::avx2
