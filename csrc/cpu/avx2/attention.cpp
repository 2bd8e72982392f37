// Causal GQA attention over the f16 cache with F16C loads and FMA: the AVX2 version of
// csrc/ref/attention.cpp. The softmax is ggml_math_simd.h (bit-identical to the scalar row). Head dims
// that are a multiple of ggml's lane count (16 on AVX-512 builds, else 8) sum q.k and p.v in llama.cpp's
// order (items_lanes: the same bits as the reference); other head dims use items_kv, whose 8-lane sums
// differ from the reference only by float summation order.
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

// llama.cpp's orders. ggml's CPU backend runs both attention products through llamafile's tinyBLAS when
// a batch has 2 or more tokens, and through ggml_vec_dot_f16 for a single token (tinyBLAS only serves
// prompt processing), each in lanes of L = 16 floats when built for AVX-512, 8 otherwise:
//   tinyBLAS (T >= 2): L lane sums, element e in lane e % L, each a chain of fused multiply-adds,
//     reduced pairwise (lanes i + L/2 onto i, then L/4, ... 1);
//   vec_dot (T = 1): 4L partial sums, element e in slot e % 4L, chains over steps of 4L elements;
//     slots (s + 2L) then (s + L) fold onto s, then the L lanes reduce (L = 16 pairwise; L = 8 as two
//     hadds: (0+4 + 1+5) + (2+6 + 3+7)); elements past the last whole step are added in double.
// Scores reduce over the head dims, each output dim of P @ V over the keys (llama.cpp's padded key
// count is a multiple of 64 and the padding has probability 0, so P @ V never has leftovers). Tested
// against llama.cpp's own tensors; csrc/ref/attention.cpp is the scalar spec of the same orders.
template <int L>
inline float reduce_lanes_vec(__m256 lo, __m256 hi) {  // lanes 0-7 in lo, 8-15 in hi (L = 16)
    return hsum8(L == 16 ? _mm256_add_ps(hi, lo) : lo);
}
inline float hsum8_hadd(__m256 v) {  // ggml's F32x8_REDUCE tail: (0+4 + 1+5) + (2+6 + 3+7)
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

template <typename KV, int L, bool kVecDot>
void items_lanes(const AttentionArgs& a, const KV* kc, const KV* vc, int64_t first, int64_t end, int64_t stride,
                 float* scratch) {
    static_assert(L == 8 || L == 16, "tinyBLAS / ggml SIMD lane widths");
    constexpr int S = kVecDot ? 4 * L : L;  // partial sums per dot product
    const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv, kv_row = a.n_head_kv * hd;
    float* scores = scratch;
    float* qh = scratch + a.pos0 + a.T;
    float* part = qh + hd;  // S rows of hd: the partial sums of P @ V
    for (int64_t item = first; item < end; item += stride) {
        const int64_t t = item / a.n_head, h = item % a.n_head, hk = h / group;
        const int64_t n_keys = a.pos0 + t + 1;
        const float* q = a.q + (t * a.n_head + h) * hd;
        for (int64_t d = 0; d < hd; d += 8)  // q rounded to f16 (ggml converts the f32 side)
            _mm256_storeu_ps(qh + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + d), _MM_FROUND_TO_NEAREST_INT)));
        if constexpr (!kVecDot) {  // scores, four keys at a time (independent chains)
            constexpr int kKeys = 4;
            auto score = [&](const KV* k, __m256& lo, __m256& hi) {
                for (int64_t d = 0; d < hd; d += L) {
                    lo = _mm256_fmadd_ps(load8(k + d), _mm256_loadu_ps(qh + d), lo);
                    if constexpr (L == 16) hi = _mm256_fmadd_ps(load8(k + d + 8), _mm256_loadu_ps(qh + d + 8), hi);
                }
            };
            int64_t j = 0;
            for (; j + kKeys <= n_keys; j += kKeys) {
                __m256 lo[kKeys], hi[kKeys];
#pragma GCC unroll 4
                for (int r = 0; r < kKeys; ++r) {
                    lo[r] = hi[r] = _mm256_setzero_ps();
                    score(kc + (j + r) * kv_row + hk * hd, lo[r], hi[r]);
                }
#pragma GCC unroll 4
                for (int r = 0; r < kKeys; ++r) scores[j + r] = reduce_lanes_vec<L>(lo[r], hi[r]) * a.scale;
            }
            for (; j < n_keys; ++j) {
                __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
                score(kc + j * kv_row + hk * hd, lo, hi);
                scores[j] = reduce_lanes_vec<L>(lo, hi) * a.scale;
            }
        } else {  // one key at a time: 4L partial sums in 4 (L = 8) or 8 (L = 16) registers
            const int64_t np = hd - hd % (4 * L);
            for (int64_t j = 0; j < n_keys; ++j) {
                const KV* k = kc + j * kv_row + hk * hd;
                __m256 acc[4][2];
#pragma GCC unroll 4
                for (int c = 0; c < 4; ++c) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
                for (int64_t d = 0; d < np; d += 4 * L) {
#pragma GCC unroll 4
                    for (int c = 0; c < 4; ++c) {
                        acc[c][0] = _mm256_fmadd_ps(load8(k + d + L * c), _mm256_loadu_ps(qh + d + L * c), acc[c][0]);
                        if constexpr (L == 16)
                            acc[c][1] = _mm256_fmadd_ps(load8(k + d + L * c + 8), _mm256_loadu_ps(qh + d + L * c + 8), acc[c][1]);
                    }
                }
                const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0][0], acc[2][0]), _mm256_add_ps(acc[1][0], acc[3][0]));
                const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[0][1], acc[2][1]), _mm256_add_ps(acc[1][1], acc[3][1]));
                double sum = L == 16 ? reduce_lanes_vec<16>(lo, hi) : hsum8_hadd(lo);
                for (int64_t d = np; d < hd; ++d) sum += static_cast<double>(to_f32(k[d]) * qh[d]);
                scores[j] = static_cast<float>(sum) * a.scale;
            }
        }
        ggml_softmax_row_avx2(scores, n_keys, n_keys, a.v512, /*round_f16=*/true);
        // P @ V: slot l sums keys l, l + S, ... for all dims (8 dims per register), then the slots reduce
        const KV* v0 = vc + hk * hd;
        for (int l = 0; l < S; ++l) {
            for (int64_t d = 0; d < hd; d += 64) {
                const int64_t nd = hd - d < 64 ? hd - d : 64;  // a multiple of 8
                __m256 o[8];
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) o[r] = _mm256_setzero_ps();
                for (int64_t jj = l; jj < n_keys; jj += S) {
                    const KV* v = v0 + jj * kv_row + d;
                    const __m256 pj = _mm256_broadcast_ss(scores + jj);
#pragma GCC unroll 8
                    for (int r = 0; r < 8; ++r)
                        if (8 * r < nd) o[r] = _mm256_fmadd_ps(load8(v + 8 * r), pj, o[r]);
                }
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r)
                    if (8 * r < nd) _mm256_storeu_ps(part + l * hd + d + 8 * r, o[r]);
            }
        }
        auto add_rows = [&](int i, int k2) {  // part[i] += part[k2], all dims
            for (int64_t d = 0; d < hd; d += 8)
                _mm256_storeu_ps(part + i * hd + d, _mm256_add_ps(_mm256_loadu_ps(part + i * hd + d),
                                                                  _mm256_loadu_ps(part + k2 * hd + d)));
        };
        if constexpr (kVecDot) {  // slots s + 2L onto s, then s + L onto s: L lanes left
            for (int i = 0; i < 2 * L; ++i) add_rows(i, i + 2 * L);
            for (int i = 0; i < L; ++i) add_rows(i, i + L);
        }
        if (kVecDot && L == 8) {  // (0+4 + 1+5) + (2+6 + 3+7)
            for (int i = 0; i < 4; ++i) add_rows(i, i + 4);
            add_rows(0, 1);
            add_rows(2, 3);
            add_rows(0, 2);
        } else {
            for (int w = L / 2; w >= 1; w /= 2)
                for (int i = 0; i < w; ++i) add_rows(i, i + w);
        }
        float* out = a.out + t * a.n_head * hd + h * hd;
        for (int64_t d = 0; d < hd; d += 8) _mm256_storeu_ps(out + d, _mm256_loadu_ps(part + d));
    }
}

}  // namespace

void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch) {
    const bool wide = a.k32 && a.v32;
    const int lanes = a.v512 ? 16 : 8;
    if (a.head_dim % lanes == 0) {  // llama.cpp's orders: vec_dot for one token, tinyBLAS for more
#define LOWBIT_ITEMS(L, VD) \
    return wide ? items_lanes<float, L, VD>(a, a.k32, a.v32, first, end, stride, scratch) \
                : items_lanes<fp16_t, L, VD>(a, a.k, a.v, first, end, stride, scratch)
        if (a.T == 1) {
            if (lanes == 16) LOWBIT_ITEMS(16, true);
            LOWBIT_ITEMS(8, true);
        }
        if (lanes == 16) LOWBIT_ITEMS(16, false);
        LOWBIT_ITEMS(8, false);
#undef LOWBIT_ITEMS
    }
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
