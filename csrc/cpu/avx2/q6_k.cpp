// Q6_K dequantize with AVX2: y = (d * scale) * (q - 32) per sub-block of 16, the two multiplies
// rounded in ggml's order. Per 128 weights: ql[0..32) low nibbles -> y[0..32), ql[32..64) low ->
// y[32..64), ql[0..32) high -> y[64..96), ql[32..64) high -> y[96..128); qh bits 2g..2g+1 are the
// top two bits of run g.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void dequantize_row_q6_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q6_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        for (int n = 0; n < 2; ++n) {
            __m256i q[4];
            unpack_q6_128(x[i].ql + 64 * n, x[i].qh + 32 * n, q);
            const int8_t* sc = x[i].scales + 8 * n;
            for (int g = 0; g < 4; ++g) {
                store_i8x16_mul(_mm256_castsi256_si128(q[g]), _mm256_set1_ps(d * sc[2 * g]), y + 32 * g);
                store_i8x16_mul(_mm256_extracti128_si256(q[g], 1), _mm256_set1_ps(d * sc[2 * g + 1]), y + 32 * g + 16);
            }
            y += 128;
        }
    }
}

}  // namespace lowbit::avx2
