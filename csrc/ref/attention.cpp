// Causal GQA attention over the f16 cache, scalar reference (the spec of the AVX2 kernel).
#include "../core/attention.h"

#include "../core/fp16.h"
#include "../core/ggml_math.h"

namespace lowbit::ref {

void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch) {
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
