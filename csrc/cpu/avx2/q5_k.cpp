// Q5_K dequantize with AVX2: as q4_K with a 5th bit: sub-block 2j+h of 32 takes bit 2j+h of the
// 32 qh bytes. y = (d * sc) * q - (dmin * m), multiply and subtract rounded separately.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void dequantize_row_q5_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_K*>(vx);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        const float dmin = half_to_float(x[i].dmin);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh));
        for (int j = 0; j < 4; ++j) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * j));
            const __m256i nib[2] = {_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)};
            for (int h = 0; h < 2; ++h) {
                // bit 2j+h of each qh byte as 0/1, then to 16 (after & 1 no bit can cross a byte)
                const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j + h)), one);
                const __m256i v = _mm256_or_si256(nib[h], _mm256_slli_epi16(bit, 4));
                uint8_t sc, m;
                scale_min_k4(2 * j + h, x[i].scales, &sc, &m);
                const __m256 dl = _mm256_set1_ps(d * sc), ml = _mm256_set1_ps(dmin * m);
                store_u8x16_mul_sub(_mm256_castsi256_si128(v), dl, ml, y);
                store_u8x16_mul_sub(_mm256_extracti128_si256(v, 1), dl, ml, y + 16);
                y += 32;
            }
        }
    }
}

}  // namespace lowbit::avx2
