// matmul's activation quantization with AVX2: ggml's CPU from_float for q8_0 / q8_1 (the spec is
// ref/act_q8.cpp: multiplier 127/amax, round half to even), fused with the {d, s} pairs of
// GemmArgs::a_ds (matmul.h's act_scales_and_sums). The reference calls nearbyintf per value and then
// re-reads every block for the sums; on SmolLM2's 576-wide layers that cost a quarter of a prompt
// matmul. Bytes and pairs are identical to the reference's: the same multiply, _mm256_round_ps's
// nearest-even is nearbyint's default mode, and |x * 127/amax| < 127.5 so the saturating packs never
// clamp (the reference's clamp is a no-op too). NaN / inf are reported, not quantized: they reach only
// float compares and the clamped scalar path (a NaN amax fails its id check), never an undefined cast.
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

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

// The largest |x| of a block of 32. bad: lanes set where an element was NaN or inf (!(|x| < inf)).
inline float block_amax(const float* x, __m256& bad) {
    const __m256 inf = _mm256_set1_ps(INFINITY);
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
        const __m256 a = abs_ps(_mm256_loadu_ps(x + 8 * i));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
        amax_v = _mm256_max_ps(amax_v, a);
    }
    return hmax_ps(amax_v);
}

// One block of 32 times id, rounded half to even: the int8 levels in element order; *sum = their sum.
inline __m256i quantize_act_32(const float* x, float id, int* sum) {
    if (!(id <= FLT_MAX)) return quantize_act_32_scalar(x, id, sum);
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; ++i)
        q[i] = _mm256_cvtps_epi32(
            _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    return pack_epi32_epi8(q[0], q[1], q[2], q[3]);
}

// A row in segments of up to 64 blocks, in two passes: the blocks' amax first, then their d = amax/127,
// 127/amax and f16 d eight blocks per division and conversion, then the levels. One block at a time,
// every block waited on its own chain of scalar divisions and f16 round trips (most of the time).
template <bool kQ8_1>
bool quantize_act_row(const float* x, void* vy, float* ds, int64_t k) {
    using Block = std::conditional_t<kQ8_1, block_q8_1, block_q8_0>;
    auto* y = static_cast<Block*>(vy);
    constexpr int kSeg = 64;
    alignas(32) float amax[kSeg], d[kSeg], id[kSeg], dh[kSeg];
    alignas(16) uint16_t d16[kSeg];
    const int64_t nb = k / 32;
    __m256 bad = _mm256_setzero_ps();
    const __m256 c127 = _mm256_set1_ps(127.f), zero = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += kSeg) {
        const int ns = static_cast<int>(std::min<int64_t>(kSeg, nb - b0));
        for (int b = 0; b < ns; ++b) amax[b] = block_amax(x + (b0 + b) * 32, bad);
        for (int b = ns; b < (ns + 7) / 8 * 8; ++b) amax[b] = 1.0f;  // padding, never used
        for (int b = 0; b < ns; b += 8) {
            const __m256 a = _mm256_load_ps(amax + b);
            const __m256 dv = _mm256_div_ps(a, c127);  // correctly rounded, as the reference's scalar division
            const __m128i hv = _mm256_cvtps_ph(dv, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_store_ps(d + b, dv);
            _mm256_store_ps(id + b, _mm256_blendv_ps(_mm256_div_ps(c127, a), zero, _mm256_cmp_ps(a, zero, _CMP_EQ_OQ)));
            _mm_store_si128(reinterpret_cast<__m128i*>(d16 + b), hv);
            _mm256_store_ps(dh + b, _mm256_cvtph_ps(hv));
        }
        for (int b = 0; b < ns; ++b) {
            const int64_t i = b0 + b;
            int sum;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), quantize_act_32(x + i * 32, id[b], &sum));
            y[i].d = d16[b];
            ds[2 * i] = dh[b];
            if constexpr (kQ8_1) {
                y[i].s = float_to_half(d[b] * static_cast<float>(sum));
                ds[2 * i + 1] = half_to_float(y[i].s);
            } else {
                ds[2 * i + 1] = dh[b] * static_cast<float>(sum);
            }
        }
    }
    return _mm256_movemask_ps(bad) == 0;
}

}  // namespace

bool quantize_act_q8_0(const float* x, void* y, float* ds, int64_t k) { return quantize_act_row<false>(x, y, ds, k); }
bool quantize_act_q8_1(const float* x, void* y, float* ds, int64_t k) { return quantize_act_row<true>(x, y, ds, k); }

}  // namespace lowbit::avx2
