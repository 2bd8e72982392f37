// Q3_K dequantize with AVX2: y = (d * (scale - 32)) * (q2 - (hbit ? 0 : 4)) per sub-block of 16,
// as ggml's dequantize_row_q3_K. Each 32-byte run of qs holds four 2-bit planes; plane p of run n
// takes its third bit from hmask bit 4n + p.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
// The 16 six-bit scales (biased by 32) packed in 12 bytes, unpacked exactly as ggml does.
void unpack_scales(const uint8_t* packed, int8_t* scales) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    std::memcpy(aux, packed, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    std::memcpy(scales, aux, 16);
}
}  // namespace

void dequantize_row_q3_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q3_K*>(vx);
    const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4), zero = _mm256_setzero_si256();
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d_all = half_to_float(x[i].d);
        int8_t scales[16];
        unpack_scales(x[i].scales, scales);
        const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].hmask));
        int is = 0;
        for (int n = 0; n < 2; ++n) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * n));
            for (int j = 0; j < 4; ++j) {
                const __m256i low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), three);
                const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * n + j)));
                const __m256i clear = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), zero);  // 0xFF: subtract 4
                const __m256i v = _mm256_sub_epi8(low, _mm256_and_si256(clear, four));
                const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
                for (int h = 0; h < 2; ++h) {
                    const __m256 dl = _mm256_set1_ps(d_all * (scales[is++] - 32));
                    store_i8x16_mul(halves[h], dl, y);
                    y += 16;
                }
            }
        }
    }
}

}  // namespace lowbit::avx2
