// Q6_K dequantize with AVX-512: every sub-block of 16 (one int8 scale) is one zmm;
// y = (d * scale) * (q - 32), the two multiplies in ggml's order. Unpacking as avx2::unpack_q6_128.
#include "avx512.h"
#include "simd_avx512.h"

namespace lowbit::avx512 {

void dequantize_row_q6_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q6_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        for (int n = 0; n < 2; ++n) {
            __m256i q[4];
            avx2::unpack_q6_128(x[i].ql + 64 * n, x[i].qh + 32 * n, q);
            const int8_t* sc = x[i].scales + 8 * n;
            for (int g = 0; g < 4; ++g) {
                const __m512 f0 = i8x16_ps(_mm256_castsi256_si128(q[g]));
                const __m512 f1 = i8x16_ps(_mm256_extracti128_si256(q[g], 1));
                _mm512_storeu_ps(y + 32 * g, _mm512_mul_ps(f0, _mm512_set1_ps(d * sc[2 * g])));
                _mm512_storeu_ps(y + 32 * g + 16, _mm512_mul_ps(f1, _mm512_set1_ps(d * sc[2 * g + 1])));
            }
            y += 128;
        }
    }
}

}  // namespace lowbit::avx512
