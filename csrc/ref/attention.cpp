// Causal GQA attention over the f16 cache, scalar reference (the spec of the AVX2 kernel).
#include "../core/attention.h"

#include <cmath>

#include "../core/fp16.h"
#include "../core/ggml_math.h"

namespace lowbit::ref {
namespace {

// The pairwise reduction of L lane sums (lanes i + L/2 onto i, then L/4, ...): _mm512_reduce_add_ps for
// L = 16, tinyBLAS's hsum for L = 8.
float reduce_lanes(float* v, int L) {
    for (int w = L / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; ++i) v[i] = v[i] + v[i + w];
    return v[0];
}

// ggml_vec_dot_f16's reduction of its 4L partial sums: slots s + 2L onto s, then s + L onto s, then
// the L lanes: pairwise for L = 16, (0+4 + 1+5) + (2+6 + 3+7) for L = 8 (two hadds).
float reduce_vec_dot(float* v, int L) {
    for (int i = 0; i < 2 * L; ++i) v[i] = v[i] + v[i + 2 * L];
    for (int i = 0; i < L; ++i) v[i] = v[i] + v[i + L];
    if (L == 16) return reduce_lanes(v, 16);
    for (int i = 0; i < 4; ++i) v[i] = v[i] + v[i + 4];
    return (v[0] + v[1]) + (v[2] + v[3]);
}

// llama.cpp's orders (the AVX2 kernel's items_lanes gives the same bits): with 2 or more tokens,
// tinyBLAS: L lane sums of fused multiply-adds, element e in lane e % L, reduced pairwise; with one
// token, ggml_vec_dot_f16: 4L slot sums, element e in slot e % 4L, reduced by reduce_vec_dot, elements
// past the last whole 4L step added in double. Scores reduce over head dims, P @ V over keys (L = 16 on
// AVX-512 builds of ggml, else 8). Needs head_dim % L == 0.
void items_lanes(const AttentionArgs& a, int L, int64_t first, int64_t end, int64_t stride, float* scratch) {
    const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv, kv_row = a.n_head_kv * hd;
    const bool vec_dot = a.T == 1;
    const int S = vec_dot ? 4 * L : L;
    float* scores = scratch;
    float* qh = scratch + a.pos0 + a.T;
    float lanes[64];
    auto reduce = [&]() { return vec_dot ? reduce_vec_dot(lanes, L) : reduce_lanes(lanes, L); };
    for (int64_t item = first; item < end; item += stride) {
        const int64_t t = item / a.n_head, h = item % a.n_head, hk = h / group;
        const int64_t n_keys = a.pos0 + t + 1;
        const float* q = a.q + (t * a.n_head + h) * hd;
        for (int64_t d = 0; d < hd; ++d) qh[d] = fp16_to_f32(f32_to_fp16(q[d]));
        const int64_t np = vec_dot ? hd - hd % S : hd;
        for (int64_t j = 0; j < n_keys; ++j) {
            const fp16_t* k = a.k + j * kv_row + hk * hd;
            for (int l = 0; l < S; ++l) lanes[l] = 0.0f;
            for (int64_t d = 0; d < np; ++d) lanes[d % S] = std::fma(fp16_to_f32(k[d]), qh[d], lanes[d % S]);
            double sum = reduce();
            for (int64_t d = np; d < hd; ++d) sum += static_cast<double>(fp16_to_f32(k[d]) * qh[d]);
            scores[j] = static_cast<float>(sum) * a.scale;
        }
        ggml_softmax_row(scores, n_keys, n_keys, a.v512, /*round_f16=*/true);
        float* out = a.out + t * a.n_head * hd + h * hd;
        for (int64_t d = 0; d < hd; ++d) {
            for (int l = 0; l < S; ++l) lanes[l] = 0.0f;
            for (int64_t j = 0; j < n_keys; ++j)
                lanes[j % S] = std::fma(fp16_to_f32(a.v[j * kv_row + hk * hd + d]), scores[j], lanes[j % S]);
            out[d] = reduce();
        }
    }
}

}  // namespace

void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch) {
    const int L = a.v512 ? 16 : 8;
    if (a.head_dim % L == 0) return items_lanes(a, L, first, end, stride, scratch);
    // other head sizes: ggml's vec_dot_f16 order is not reproduced; plain sums
    const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv, kv_row = a.n_head_kv * hd;
    float* scores = scratch;
    float* qh = scratch + a.pos0 + a.T;
    for (int64_t item = first; item < end; item += stride) {
        const int64_t t = item / a.n_head, h = item % a.n_head, hk = h / group;
        const int64_t n_keys = a.pos0 + t + 1;  // causal: keys at positions <= pos0 + t
        const float* q = a.q + (t * a.n_head + h) * hd;
        for (int64_t d = 0; d < hd; ++d) qh[d] = fp16_to_f32(f32_to_fp16(q[d]));  // ggml's f16 matmul input
        for (int64_t j = 0; j < n_keys; ++j) {
            const fp16_t* k = a.k + j * kv_row + hk * hd;
            float dot = 0.0f;
            for (int64_t d = 0; d < hd; ++d) dot += qh[d] * fp16_to_f32(k[d]);
            scores[j] = dot * a.scale;
        }
        ggml_softmax_row(scores, n_keys, n_keys, a.v512, /*round_f16=*/true);
        float* out = a.out + t * a.n_head * hd + h * hd;
        for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
        for (int64_t j = 0; j < n_keys; ++j) {
            const fp16_t* v = a.v + j * kv_row + hk * hd;
            for (int64_t d = 0; d < hd; ++d) out[d] += scores[j] * fp16_to_f32(v[d]);
        }
    }
}

}  // namespace lowbit::ref
