// Causal GQA attention over the f16 cache with F16C loads and FMA: the AVX2 version of
// csrc/ref/attention.cpp. The softmax is ggml_math_simd.h (bit-identical to the scalar row); the q.k dot
// products are summed in 8 lanes then reduced, and P @ V accumulates 8 output dims per register, so
// results differ from the reference only by float summation order.
#include <immintrin.h>

#include "../../core/attention.h"
#include "../../core/fp16.h"
#include "ggml_math_simd.h"

namespace lowbit::avx2 {
namespace {

inline __m256 load8(const fp16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline float to_f32(fp16_t h) { return fp16_to_f32(h); }
inline float to_f32(float f) { return f; }

inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// HD: head_dim known at compile time (0: a.head_dim), so the common sizes unroll with q in registers.
template <typename KV, int HD>
void items_kv(const AttentionArgs& a, const KV* kc, const KV* vc, int64_t first, int64_t end, int64_t stride,
              float* scratch) {
    const int64_t hd = HD ? HD : a.head_dim, group = a.n_head / a.n_head_kv, kv_row = a.n_head_kv * hd;
    const int64_t hd8 = hd & ~int64_t(7);
    float* scores = scratch;
    float* qh = scratch + a.pos0 + a.T;
    for (int64_t item = first; item < end; item += stride) {
        const int64_t t = item / a.n_head, h = item % a.n_head, hk = h / group;
        const int64_t n_keys = a.pos0 + t + 1;
        const float* q = a.q + (t * a.n_head + h) * hd;
        {  // q rounded to f16 (F16C rounds to nearest even, as f32_to_fp16)
            int64_t d = 0;
            for (; d + 8 <= hd; d += 8)
                _mm256_storeu_ps(qh + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + d), _MM_FROUND_TO_NEAREST_INT)));
            for (; d < hd; ++d) qh[d] = fp16_to_f32(f32_to_fp16(q[d]));
        }
        // scores, eight keys at a time: eight independent FMA chains hide the FMA latency, and one
        // transpose-add tree turns the eight accumulators into the eight dots
        const __m256 scale8 = _mm256_set1_ps(a.scale);
        int64_t j = 0;
        if (hd8 == hd) {
            for (; j + 8 <= n_keys; j += 8) {
                const KV* k = kc + j * kv_row + hk * hd;
                __m256 acc[8];
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
                for (int64_t d = 0; d < hd; d += 8) {
                    const __m256 qd = _mm256_loadu_ps(qh + d);
#pragma GCC unroll 8
                    for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(qd, load8(k + r * kv_row + d), acc[r]);
                }
                const __m256 h01 = _mm256_hadd_ps(acc[0], acc[1]), h23 = _mm256_hadd_ps(acc[2], acc[3]);
                const __m256 h45 = _mm256_hadd_ps(acc[4], acc[5]), h67 = _mm256_hadd_ps(acc[6], acc[7]);
                const __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
                // h0123 = [k0 k1 k2 k3 (low halves) | k0 k1 k2 k3 (high halves)], likewise h4567
                const __m256 lo = _mm256_permute2f128_ps(h0123, h4567, 0x20);
                const __m256 hi = _mm256_permute2f128_ps(h0123, h4567, 0x31);
                _mm256_storeu_ps(scores + j, _mm256_mul_ps(_mm256_add_ps(lo, hi), scale8));
            }
        }
        for (; j < n_keys; ++j) {
            const KV* k = kc + j * kv_row + hk * hd;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            int64_t d = 0;
            for (; d + 16 <= hd8; d += 16) {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), load8(k + d), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d + 8), load8(k + d + 8), acc1);
            }
            for (; d < hd8; d += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), load8(k + d), acc0);
            float dot = hsum8(_mm256_add_ps(acc0, acc1));
            for (; d < hd; ++d) dot += qh[d] * to_f32(k[d]);
            scores[j] = dot * a.scale;
        }
        ggml_softmax_row_avx2(scores, n_keys, n_keys, a.v512, /*round_f16=*/true);
        // out = P @ V: eight registers (64 dims) per pass over the keys, one FMA chain each
        float* out = a.out + t * a.n_head * hd + h * hd;
        const KV* v0 = vc + hk * hd;
        int64_t d = 0;
        for (; d + 64 <= hd8; d += 64) {
            __m256 o[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; ++r) o[r] = _mm256_setzero_ps();
            for (int64_t jj = 0; jj < n_keys; ++jj) {
                const KV* v = v0 + jj * kv_row + d;
                const __m256 p = _mm256_broadcast_ss(scores + jj);
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) o[r] = _mm256_fmadd_ps(p, load8(v + 8 * r), o[r]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; ++r) _mm256_storeu_ps(out + d + 8 * r, o[r]);
        }
        for (; d < hd8; d += 8) {
            __m256 o = _mm256_setzero_ps();
            for (int64_t jj = 0; jj < n_keys; ++jj)
                o = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + jj), load8(v0 + jj * kv_row + d), o);
            _mm256_storeu_ps(out + d, o);
        }
        for (; d < hd; ++d) {
            float o = 0.0f;
            for (int64_t jj = 0; jj < n_keys; ++jj) o += scores[jj] * to_f32(v0[jj * kv_row + d]);
            out[d] = o;
        }
    }
}

}  // namespace

void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch) {
    const bool wide = a.k32 && a.v32;
    if (a.head_dim == 64)
        wide ? items_kv<float, 64>(a, a.k32, a.v32, first, end, stride, scratch)
             : items_kv<fp16_t, 64>(a, a.k, a.v, first, end, stride, scratch);
    else if (a.head_dim == 128)
        wide ? items_kv<float, 128>(a, a.k32, a.v32, first, end, stride, scratch)
             : items_kv<fp16_t, 128>(a, a.k, a.v, first, end, stride, scratch);
    else
        wide ? items_kv<float, 0>(a, a.k32, a.v32, first, end, stride, scratch)
             : items_kv<fp16_t, 0>(a, a.k, a.v, first, end, stride, scratch);
}

}  // namespace lowbit::avx2
