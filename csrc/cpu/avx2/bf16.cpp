// BF16: the reference's integer recipe (round to nearest even by adding 0x7fff + lsb, NaN -> quiet
// NaN with its top payload bits) done on 8 lanes at once; bf16 -> f32 is a 16-bit shift.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
inline uint16_t bf16_from_f32(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// 8 floats -> 8 bf16, in order.
inline __m128i bf16x8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i hi = _mm256_srli_epi32(u, 16);
    // |u| > inf bits: a signed compare is safe, both sides are below 2^31
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    const __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(64));
    const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
    // every lane is < 2^16, so the unsigned-saturating pack is a plain narrowing
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
}  // namespace

void quantize_row_bf16(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<uint16_t*>(vy);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), bf16x8(_mm256_loadu_ps(x + i)));
    for (; i < k; ++i) y[i] = bf16_from_f32(x[i]);
}

void dequantize_row_bf16(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const uint16_t*>(vx);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
    }
    for (; i < k; ++i) {
        const uint32_t u = static_cast<uint32_t>(x[i]) << 16;
        std::memcpy(y + i, &u, 4);
    }
}

}  // namespace lowbit::avx2
