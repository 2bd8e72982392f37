// F16: f32 <-> IEEE half with F16C. The hardware rounds to nearest even like the reference's
// float-arithmetic recipe; only NaN differs (F16C keeps payload bits, ggml writes sign | 0x7E00),
// so blocks holding a NaN are redone lane by lane.
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
inline uint16_t f16_from_f32(float f) {
    if (f != f) {  // NaN: the reference's canonical quiet NaN, keeping the sign
        uint32_t u;
        std::memcpy(&u, &f, 4);
        return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7E00u);
    }
    return float_to_half(f);
}
}  // namespace

void quantize_row_f16(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<uint16_t*>(vy);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)))
            for (int j = 0; j < 8; ++j) y[i + j] = f16_from_f32(x[i + j]);
    }
    for (; i < k; ++i) y[i] = f16_from_f32(x[i]);
}

void dequantize_row_f16(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const uint16_t*>(vx);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
    for (; i < k; ++i) y[i] = half_to_float(x[i]);
}

}  // namespace lowbit::avx2
