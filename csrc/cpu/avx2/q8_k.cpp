// Q8_K with AVX2 (ggml's quantize_row_q8_K_ref). Quantize: max = first element of largest
// magnitude, iscale = -127 / max, q = min(127, nearest_int(iscale * x)), bsums = sums of 16,
// d = 1 / iscale (f32). Dequantize: d * q.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
// ggml's nearest_int on 8 lanes, the same float add and bit extraction: adding 1.5 * 2^23 leaves
// round-half-to-even(v) in the low mantissa bits (|v| <= 127 here).
inline __m256i nearest_int_8(__m256 v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

void quantize_block(const float* x, block_q8_K* y) {
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8) amax_v = _mm256_max_ps(amax_v, abs_ps(_mm256_loadu_ps(x + i)));
    const float amax = hmax_ps(amax_v);
    if (!(amax > 0.0f)) {
        // ggml writes d and qs only; bsums are zeroed here so the bytes do not depend on the buffer
        // (ggml_quantize_chunk's callers hand it zeroed memory).
        std::memset(y, 0, sizeof(*y));
        return;
    }
    const float max = first_equal(x, QK_K, amax, true);
    const float iscale = -127.f / max;
    const __m256 s = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int g = 0; g < QK_K; g += 32) {
        __m256i q[4];
        for (int i = 0; i < 4; ++i) {
            const __m256i n = nearest_int_8(_mm256_mul_ps(s, _mm256_loadu_ps(x + g + 8 * i)));
            q[i] = low_byte_i8(_mm256_min_epi32(n, cap));  // the int8_t store of MIN(127, v)
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs + g), pack_epi32_epi8(q[0], q[1], q[2], q[3]));
        y->bsums[g / 16] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(q[0], q[1])));
        y->bsums[g / 16 + 1] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(q[2], q[3])));
    }
    y->d = 1 / iscale;
}
}  // namespace

void quantize_row_q8_k(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) quantize_block(x + i * QK_K, y + i);
}

void dequantize_row_q8_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q8_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const __m256 d = _mm256_set1_ps(x[i].d);
        for (int j = 0; j < QK_K; j += 32)
            store_i8x32_mul(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + j)), d, y + i * QK_K + j);
    }
}

}  // namespace lowbit::avx2
