#pragma once
// ggml's exp, softmax row and SiLU (csrc/core/ggml_math.h, the scalar spec) eight lanes at a time with
// AVX2+FMA, bit-identical to the scalar code: the same fused multiply-adds in the same order, 2^n built
// from its exponent bits where the scalar code calls scalbn (exact for |n| <= 126, where j * 2^n rounds
// once either way). Lanes outside that range (exp of < -87 or > 87) take the scalar code. Only for
// translation units compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "../../core/ggml_math.h"

namespace lowbit {
namespace {

inline __m256 ggml_expf8(__m256 x, bool v512) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    // |n| <= 126 on every lane (a NaN lane fails the compare too): otherwise the scalar code
    const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    if (_mm256_movemask_ps(_mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_LE_OQ)) != 0xff) {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, x);
        for (int l = 0; l < 8; ++l) lanes[l] = ggml_expf(lanes[l], v512);
        return _mm256_load_ps(lanes);
    }
    const __m256 neg_n = _mm256_sub_ps(_mm256_setzero_ps(), n);
    __m256 b = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(0x1.62e4p-1f), x);
    b = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(0x1.7f7d1cp-20f), b);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p1 = _mm256_fmadd_ps(b, _mm256_set1_ps(0x1.0e4020p-7f), _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 p2 = _mm256_fmadd_ps(b, _mm256_set1_ps(0x1.555e66p-3f), _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 inner = _mm256_fmadd_ps(p1, u, p2);
    const __m256 k = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));  // 2^n
    if (v512) {
        const __m256 j = _mm256_fmadd_ps(inner, u, _mm256_fmadd_ps(b, _mm256_set1_ps(0x1.ffffecp-1f), _mm256_set1_ps(1.0f)));
        return _mm256_mul_ps(j, k);
    }
    const __m256 j = _mm256_fmadd_ps(inner, u, _mm256_mul_ps(b, _mm256_set1_ps(0x1.ffffecp-1f)));
    return _mm256_fmadd_ps(k, j, k);
}

// ggml_softmax_row (ggml_math.h) with the full 16-lane chunks in registers; same bits.
inline void ggml_softmax_row_avx2(float* s, int64_t n, int64_t valid, bool v512, bool round_f16) {
    float mx = -INFINITY;
    int64_t i = 0;
    if (valid >= 8) {
        __m256 m8 = _mm256_loadu_ps(s);
        for (i = 8; i + 8 <= valid; i += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(s + i));
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, m8);
        for (int l = 0; l < 8; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    }
    for (; i < valid; ++i) mx = s[i] > mx ? s[i] : mx;
    const __m256 mx8 = _mm256_set1_ps(mx);
    double total = 0.0;
    int64_t c = 0;
    for (; c + 16 <= valid; c += 16) {
        const __m256 lo = ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(s + c), mx8), v512);
        const __m256 hi = ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(s + c + 8), mx8), v512);
        _mm256_storeu_ps(s + c, lo);
        _mm256_storeu_ps(s + c + 8, hi);
        const __m256 t8 = _mm256_add_ps(hi, lo);
        const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
        alignas(16) float t[4];
        _mm_store_ps(t, t4);
        const float t0 = t[0] + t[2], t1 = t[1] + t[3];
        total += double(t0 + t1);
    }
    if (c < valid)  // the last, partial chunk: the scalar spec's, zero lanes past `valid`
        total += double(ggml_softmax_chunk16(s, c, valid, mx, v512));
    const float inv = float(1.0 / total);
    const __m256 inv8 = _mm256_set1_ps(inv);
    i = 0;
    if (round_f16) {
        for (; i + 8 <= valid; i += 8) {
            const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(s + i), inv8);
            _mm256_storeu_ps(s + i, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
        }
        for (; i < valid; ++i) s[i] = fp16_to_f32(f32_to_fp16(s[i] * inv));
    } else {
        for (; i + 8 <= valid; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv8));
        for (; i < valid; ++i) s[i] *= inv;
    }
    for (i = valid; i < n; ++i) s[i] = 0.0f;
}

// ggml_silu_row: x / (1 + expf(-x)), eight at a time.
inline void ggml_silu_row_avx2(const float* x, float* y, int64_t n, bool v512) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, ggml_expf8(_mm256_xor_ps(v, sign), v512))));
    }
    for (; i < n; ++i) y[i] = x[i] / (1.0f + ggml_expf(-x[i], v512));
}

}  // namespace
}  // namespace lowbit
