// Q4_K dequantize with AVX-512: y = (d * sc) * q - (dmin * m), multiply and subtract rounded
// separately (ggml's order). Each 32-byte run of qs is two sub-blocks of 32 = four zmm.
#include "avx512.h"
#include "simd_avx512.h"

namespace lowbit::avx512 {

void dequantize_row_q4_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_K*>(vx);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        const float dmin = half_to_float(x[i].dmin);
        for (int j = 0; j < 4; ++j) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * j));
            const __m256i sub[2] = {_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)};
            for (int h = 0; h < 2; ++h) {
                uint8_t sc, m;
                avx2::scale_min_k4(2 * j + h, x[i].scales, &sc, &m);
                const __m512 dl = _mm512_set1_ps(d * sc), ml = _mm512_set1_ps(dmin * m);
                const __m512 f0 = u8x16_ps(_mm256_castsi256_si128(sub[h]));
                const __m512 f1 = u8x16_ps(_mm256_extracti128_si256(sub[h], 1));
                _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(dl, f0), ml));
                _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(dl, f1), ml));
                y += 32;
            }
        }
    }
}

}  // namespace lowbit::avx512
