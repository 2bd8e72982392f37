// Q4_K dequantize with AVX2: y = (d * sc) * q - (dmin * m) per sub-block of 32 (multiply and
// subtract rounded separately, as ggml's dequantize_row_q4_K). Each 32-byte run of qs holds two
// sub-blocks: low nibbles, then high nibbles.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

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
                scale_min_k4(2 * j + h, x[i].scales, &sc, &m);
                const __m256 dl = _mm256_set1_ps(d * sc), ml = _mm256_set1_ps(dmin * m);
                store_u8x16_mul_sub(_mm256_castsi256_si128(sub[h]), dl, ml, y);
                store_u8x16_mul_sub(_mm256_extracti128_si256(sub[h], 1), dl, ml, y + 16);
                y += 32;
            }
        }
    }
}

}  // namespace lowbit::avx2
