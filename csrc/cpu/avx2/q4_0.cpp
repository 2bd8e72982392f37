// Q4_0 with AVX2. Quantize (no imatrix): d = max / -8 where max is the first element of largest
// magnitude, q = min(15, trunc(x * (1/d) + 8.5)); dequantize: (q - 8) * d.
#include "../../ref/ref.h"
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
void quantize_block(const float* x, block_q4_0* y) {
    __m256 v[4];
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax_v = _mm256_max_ps(amax_v, abs_ps(v[i]));
    }
    const float amax = hmax_ps(amax_v);
    // The reference only replaces its initial +0 on |x| > 0: an all-(±)zero block keeps max = +0.
    const float max = amax > 0.0f ? first_equal(x, QK4_0, amax, true) : 0.0f;
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = float_to_half(d);
    const __m256 idv = _mm256_set1_ps(id), half = _mm256_set1_ps(8.5f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
        // x*id + 8.5 >= 0.5 - ulps, so the reference's int8 cast is cvtt (+ low byte, see
        // low_byte_i8); multiply and add stay separate roundings.
        const __m256i t = low_byte_i8(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[i], idv), half)));
        q[i] = _mm256_min_epi32(t, _mm256_set1_epi32(15));
    }
    pack_nibbles_32(pack_epi32_epi8(q[0], q[1], q[2], q[3]), y->qs);
}
}  // namespace

void quantize_row_q4_0(const float* x, void* vy, int64_t k, const float* imatrix) {
    if (imatrix) return ref::quantize_row_q4_0(x, vy, k, imatrix);
    auto* y = static_cast<block_q4_0*>(vy);
    for (int64_t i = 0; i < k / QK4_0; ++i) quantize_block(x + i * QK4_0, y + i);
}

void dequantize_row_q4_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_0*>(vx);
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < k / QK4_0; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        const __m256i q = _mm256_sub_epi8(unpack_nibbles_32(x[i].qs), eight);
        store_i8x32_mul(q, d, y + i * QK4_0);
    }
}

}  // namespace lowbit::avx2
