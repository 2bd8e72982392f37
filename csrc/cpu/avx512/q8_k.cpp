// Q8_K quantize with AVX-512 (ggml's quantize_row_q8_K_ref): 256 floats = 16 zmm, and each zmm is
// exactly one 16-weight bsums group. max = first element of largest magnitude, iscale = -127/max,
// q = min(127, nearest_int(iscale * x)), d = 1 / iscale.
#include "avx512.h"
#include "simd_avx512.h"

namespace lowbit::avx512 {

namespace {
// ggml's nearest_int: the same float add of 1.5 * 2^23 and the same bit extraction (half to even).
inline __m512i nearest_int_16(__m512 v) {
    const __m512i bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.f)));
    return _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
}

// The first element whose |x| equals amax: the reference keeps the first strict maximum.
inline float first_of_amax(const float* x, float amax) {
    const __m512 a = _mm512_set1_ps(amax);
    for (int i = 0; i < QK_K; i += 16) {
        const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + i)), a, _CMP_EQ_OQ);
        if (m) return x[i + __builtin_ctz(m)];
    }
    return amax;  // unreachable: amax came from x
}

void quantize_block(const float* x, block_q8_K* y) {
    __m512 amax_v = _mm512_setzero_ps();
    for (int i = 0; i < QK_K; i += 16) amax_v = _mm512_max_ps(amax_v, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = _mm512_reduce_max_ps(amax_v);
    if (!(amax > 0.0f)) {
        std::memset(y, 0, sizeof(*y));  // as avx2::quantize_row_q8_k: bsums zeroed too
        return;
    }
    const float iscale = -127.f / first_of_amax(x, amax);
    const __m512 s = _mm512_set1_ps(iscale);
    const __m512i cap = _mm512_set1_epi32(127);
    for (int g = 0; g < QK_K / 16; ++g) {
        const __m512i n = _mm512_min_epi32(nearest_int_16(_mm512_mul_ps(s, _mm512_loadu_ps(x + 16 * g))), cap);
        // the int8_t store keeps the low byte (matters only when iscale overflowed); bsums add those
        const __m512i q = _mm512_srai_epi32(_mm512_slli_epi32(n, 24), 24);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs + 16 * g), _mm512_cvtepi32_epi8(q));
        y->bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y->d = 1 / iscale;
}
}  // namespace

void quantize_row_q8_k(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<block_q8_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) quantize_block(x + i * QK_K, y + i);
}

}  // namespace lowbit::avx512
