// matmul's activation quantization with AVX2: ggml's CPU from_float for q8_0 / q8_1 (the spec is
// ref/act_q8.cpp: multiplier 127/amax, round half to even), fused with the {d, s} pairs of
// GemmArgs::a_ds (matmul.h's act_scales_and_sums). The reference calls nearbyintf per value and then
// re-reads every block for the sums; on SmolLM2's 576-wide layers that cost a quarter of a prompt
// matmul. Bytes and pairs are identical to the reference's: the same multiply, _mm256_round_ps's
// nearest-even is nearbyint's default mode, and |x * 127/amax| < 127.5 so the saturating packs never
// clamp (the reference's clamp is a no-op too).
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "../../core/blocks.h"
#include "matmul_avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {

// The reference's own steps, for a block so small (amax < 127 / FLT_MAX) that 127/amax overflows to
// inf: there x * inf and 0 * inf (NaN) go through the reference's float clamp, which the integer
// conversion cannot reproduce.
__m256i quantize_act_32_scalar(const float* x, float id, int* sum) {
    alignas(32) int8_t q[32];
    *sum = 0;
    for (int j = 0; j < 32; ++j) {
        const float v = std::nearbyint(x[j] * id);
        q[j] = static_cast<int8_t>(std::max(-128.0f, std::min(127.0f, v)));
        *sum += q[j];
    }
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(q));
}

// One block of 32: the int8 levels in element order, *d = amax / 127 (f32), *sum = sum of the levels.
inline __m256i quantize_act_32(const float* x, float* d, int* sum) {
    __m256 v[4];
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax_v = _mm256_max_ps(amax_v, abs_ps(v[i]));
    }
    const float amax = hmax_ps(amax_v);
    *d = amax / 127.f;
    const float idf = amax != 0.0f ? 127.f / amax : 0.0f;
    if (!(idf <= FLT_MAX)) return quantize_act_32_scalar(x, idf, sum);
    const __m256 id = _mm256_set1_ps(idf);
    __m256i q[4];
    for (int i = 0; i < 4; ++i)
        q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    return pack_epi32_epi8(q[0], q[1], q[2], q[3]);
}

}  // namespace

void quantize_act_q8_0(const float* x, void* vy, float* ds, int64_t k) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < k / QK8_0; ++i) {
        float d;
        int sum;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), quantize_act_32(x + i * QK8_0, &d, &sum));
        y[i].d = float_to_half(d);
        ds[2 * i] = half_to_float(y[i].d);
        ds[2 * i + 1] = ds[2 * i] * static_cast<float>(sum);
    }
}

void quantize_act_q8_1(const float* x, void* vy, float* ds, int64_t k) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < k / QK8_1; ++i) {
        float d;
        int sum;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), quantize_act_32(x + i * QK8_1, &d, &sum));
        y[i].d = float_to_half(d);
        y[i].s = float_to_half(d * static_cast<float>(sum));
        ds[2 * i] = half_to_float(y[i].d);
        ds[2 * i + 1] = half_to_float(y[i].s);
    }
}

}  // namespace lowbit::avx2
