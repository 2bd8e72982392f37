// IQ4_XS dequantize with AVX2: y = (d * (ls - 32)) * kvalues_iq4nl[q] per sub-block of 32, the
// 6-bit ls split over scales_l (4 bits) and scales_h (2 bits), as ggml's dequantize_row_iq4_xs.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

void dequantize_row_iq4_xs(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_iq4_xs*>(vx);
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = half_to_float(x[i].d);
        const uint16_t scales_h = x[i].scales_h;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scales_h >> 2 * ib) & 3) << 4);
            const __m256 dl = _mm256_set1_ps(d * (ls - 32));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16 * ib));
            store_i8x16_mul(_mm_shuffle_epi8(table, _mm_and_si128(b, m4)), dl, y);
            store_i8x16_mul(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(b, 4), m4)), dl, y + 16);
            y += 32;
        }
    }
}

}  // namespace lowbit::avx2
