#pragma once
// Causal grouped-query attention over the f16 KV cache, as the Python `attention()` in
// python/lowbit/model/llama.py computes it (that function is the readable spec): queries rounded to f16,
// scores = f16 q . f16 k summed in f32 times scale, ggml's softmax row (csrc/core/ggml_math.h) with the
// probabilities rounded to f16, then probs @ V accumulated in f32. Only the causal part is computed:
// query t (position pos0 + t) reads cache rows 0..pos0+t.
#include <cstdint>

#include "blocks.h"

namespace lowbit {

struct AttentionArgs {
    const float* q;       // (T, n_head, head_dim) f32
    const fp16_t* k;      // (>= pos0 + T, n_head_kv, head_dim) f16 cache rows of one layer
    const fp16_t* v;      // same layout as k
    float* out;           // (T, n_head * head_dim) f32
    int64_t T, n_head, n_head_kv, head_dim, pos0;
    float scale;
    bool v512;            // ggml's AVX-512 exp variant (see ggml_math.h)
    // Optional: k and v rows 0..pos0+T-1 already widened to f32 (same layout); the AVX2 kernel reads
    // these instead when set (the values are the same, f16 -> f32 is exact).
    const float* k32 = nullptr;
    const float* v32 = nullptr;
};

// Floats of scratch one attention_items call needs: the scores of one query row plus its f16-rounded q.
// Floats of scratch one attention_items call needs: the scores of one query row, its f16-rounded q, and
// up to 64 partial sums of P @ V per head dim (ggml's vec_dot order, see the kernels).
inline int64_t attention_scratch_floats(const AttentionArgs& a) { return a.pos0 + a.T + 65 * a.head_dim; }

// Threaded over (query row, head) items with the global ThreadPool. simd: the AVX2+F16C kernel (the
// caller checks the CPU), else the scalar reference. Must not be called from inside a pool job.
void attention_f16(const AttentionArgs& a, int threads, bool simd);

}  // namespace lowbit

// The per-ISA kernels: items first, first + stride, ... < end with item = t * n_head + h; scratch:
// attention_scratch_floats(a) floats. Both follow llama.cpp's summation order where the head dim is a
// multiple of the lane count (then their bits agree); elsewhere the AVX2 one sums in its own 8-lane order.
namespace lowbit::ref {
void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch);
}
namespace lowbit::avx2 {
void attention_items(const AttentionArgs& a, int64_t first, int64_t end, int64_t stride, float* scratch);
}
