// Causal GQA attention over the f16 cache with F16C loads and FMA: the AVX2 version of
// csrc/ref/attention.cpp. The softmax is the same header compiled here (bit-identical); the q.k dot
// products are summed in 8 lanes then reduced, and P @ V accumulates 8 output dims per register, so
// results differ from the reference only by float summation order.
#include <immintrin.h>

#include "../../core/attention.h"
#include "../../core/fp16.h"
#include "ggml_math_simd.h"

namespace lowbit::avx2 {
namespace {

inline __m256 load_f16x8(const fp16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace

void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch) {
    const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv, kv_row = a.n_head_kv * hd;
    const int64_t hd8 = hd & ~int64_t(7);
    float* scores = scratch;
    float* qh = scratch + a.pos0 + a.T;
    for (int64_t item = first; item < end; item += stride) {
        const int64_t t = item / a.n_head, h = item % a.n_head, hk = h / group;
        const int64_t n_keys = a.pos0 + t + 1;
        const float* q = a.q + (t * a.n_head + h) * hd;
        for (int64_t d = 0; d < hd; ++d) qh[d] = fp16_to_f32(f32_to_fp16(q[d]));
        // scores: two accumulators per key hide the FMA latency
        for (int64_t j = 0; j < n_keys; ++j) {
            const fp16_t* k = a.k + j * kv_row + hk * hd;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            int64_t d = 0;
            for (; d + 16 <= hd8; d += 16) {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), load_f16x8(k + d), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d + 8), load_f16x8(k + d + 8), acc1);
            }
            for (; d < hd8; d += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), load_f16x8(k + d), acc0);
            float dot = hsum8(_mm256_add_ps(acc0, acc1));
            for (; d < hd; ++d) dot += qh[d] * fp16_to_f32(k[d]);
            scores[j] = dot * a.scale;
        }
        ggml_softmax_row_avx2(scores, n_keys, n_keys, a.v512, /*round_f16=*/true);
        // out = P @ V: up to 4 registers (32 dims, one 64-byte line of f16) per pass over the keys
        float* out = a.out + t * a.n_head * hd + h * hd;
        const fp16_t* v0 = a.v + hk * hd;
        int64_t d = 0;
        for (; d + 32 <= hd8; d += 32) {
            __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
            for (int64_t j = 0; j < n_keys; ++j) {
                const fp16_t* v = v0 + j * kv_row + d;
                const __m256 p = _mm256_broadcast_ss(scores + j);
                o0 = _mm256_fmadd_ps(p, load_f16x8(v), o0);
                o1 = _mm256_fmadd_ps(p, load_f16x8(v + 8), o1);
                o2 = _mm256_fmadd_ps(p, load_f16x8(v + 16), o2);
                o3 = _mm256_fmadd_ps(p, load_f16x8(v + 24), o3);
            }
            _mm256_storeu_ps(out + d, o0);
            _mm256_storeu_ps(out + d + 8, o1);
            _mm256_storeu_ps(out + d + 16, o2);
            _mm256_storeu_ps(out + d + 24, o3);
        }
        for (; d < hd8; d += 8) {
            __m256 o = _mm256_setzero_ps();
            for (int64_t j = 0; j < n_keys; ++j)
                o = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + j), load_f16x8(v0 + j * kv_row + d), o);
            _mm256_storeu_ps(out + d, o);
        }
        for (; d < hd; ++d) {
            float o = 0.0f;
            for (int64_t j = 0; j < n_keys; ++j) o += scores[j] * fp16_to_f32(v0[j * kv_row + d]);
            out[d] = o;
        }
    }
}

}  // namespace lowbit::avx2
