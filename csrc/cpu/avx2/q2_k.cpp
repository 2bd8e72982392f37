// Q2_K dequantize with AVX2: y = (d * scale) * q - (dmin * min) per sub-block of 16, multiply and
// subtract rounded separately as in ggml's dequantize_row_q2_K. Each 32-byte run of qs holds four
// 2-bit planes (shift 0, 2, 4, 6), each plane two sub-blocks of 16.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void dequantize_row_q2_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q2_K*>(vx);
    const __m256i three = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        const float dmin = half_to_float(x[i].dmin);
        const uint8_t* sc = x[i].scales;
        for (int n = 0; n < 2; ++n) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * n));
            for (int j = 0; j < 4; ++j) {
                // the 16-bit shift leaks bits across bytes, the & 3 drops them
                const __m256i v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), three);
                const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
                for (int h = 0; h < 2; ++h) {
                    const uint8_t s = *sc++;
                    const __m256 dl = _mm256_set1_ps(d * (s & 0xF));
                    const __m256 ml = _mm256_set1_ps(dmin * (s >> 4));
                    store_u8x16_mul_sub(halves[h], dl, ml, y);
                    y += 16;
                }
            }
        }
    }
}

}  // namespace lowbit::avx2
