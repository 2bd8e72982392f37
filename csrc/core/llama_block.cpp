// llama_blocks: one call for a run of transformer blocks. Each step mirrors a line of LlamaModel.block:
//   rmsnorm: squares in f32, their sum in f64 in order (ggml_rms_norm), scale = 1/sqrtf(mean + eps) in
//            f32, then (x * scale) * weight
//   q/k/v:   lowbit::matmul (the same kernels as _core.matmul) + bias
//   rope:    fma(x0, c, -(x1*s)), fma(x0, s, x1*c) in f32: ggml's expressions as GCC contracts them
//            (this file is built with -ffp-contract=off, so the fusion is spelled out)
//   cache:   K/V rounded to f16 (round to nearest even, as numpy's cast)
//   attention_f16, then x += (a @ wo) * residual_scale; the feed-forward likewise with silu(g) * u
// The activations live in buffers allocated once per call and reused by every layer.
#include "llama_block.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention.h"
#include "fp16.h"
#include "matmul.h"
#include "thread_pool.h"

namespace lowbit {
namespace avx2 {
void ggml_silu(const float* x, float* y, int64_t n, bool v512);  // csrc/cpu/avx2/ggml_math_avx2.cpp
}
namespace ref {
void ggml_silu(const float* x, float* y, int64_t n, bool v512);  // csrc/ref/ggml_math.cpp
}

namespace {

// Rows of (rows, cols) split over the pool, but only when there is enough work to pay the hand-off.
template <typename Fn>
void for_rows(int64_t rows, int64_t cols, int threads, Fn&& fn) {
    const int nt = rows * cols >= 32768 ? threads : 1;
    ThreadPool::global().parallel_for(rows, nt, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) fn(r);
    });
}

void rmsnorm(const float* x, const float* w, float* y, int64_t T, int64_t d, float eps, int threads) {
    for_rows(T, d, threads, [&](int64_t t) {
        const float* xr = x + t * d;
        float* yr = y + t * d;
        double sum = 0.0;
        for (int64_t i = 0; i < d; ++i) sum += double(xr[i] * xr[i]);
        const float mean = float(sum / double(d));
        const float scale = 1.0f / std::sqrt(mean + eps);
        for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] * scale) * w[i];
    });
}

// y = x @ W.T (+ bias): (T, w.k) -> (T, w.n)
void linear(const float* x, const BlockWeight& w, const float* bias, float* y, int64_t T, int threads, Isa isa) {
    matmul(x, T, w.k, w.data, w.n, w.type, y, threads, isa, w.layout);
    if (bias)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < w.n; ++i) y[t * w.n + i] += bias[i];
}

// The rotation with the fused multiply-add as an instruction where the CPU has one (fmaf is exact either
// way: the libm fallback gives the same bits, slowly).
template <class Fma>
void rope_rows_with(Fma fma, float* x, int64_t T, int64_t n_heads, int64_t hd, int64_t n_rot, bool neox,
                    const float* cos, const float* sin) {
    const int64_t half = n_rot / 2;
    for (int64_t t = 0; t < T; ++t) {
        const float* c = cos + t * half;
        const float* s = sin + t * half;
        for (int64_t h = 0; h < n_heads; ++h) {
            float* r = x + (t * n_heads + h) * hd;
            for (int64_t i = 0; i < half; ++i) {
                float* p0 = neox ? r + i : r + 2 * i;
                float* p1 = neox ? r + i + half : r + 2 * i + 1;
                const float x0 = *p0, x1 = *p1;
                *p0 = fma(x0, c[i], -(x1 * s[i]));
                *p1 = fma(x0, s[i], x1 * c[i]);
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("fma"))) void rope_rows_fma(float* x, int64_t T, int64_t n_heads, int64_t hd, int64_t n_rot,
                                                  bool neox, const float* cos, const float* sin) {
    rope_rows_with([](float a, float b, float c) { return __builtin_fmaf(a, b, c); }, x, T, n_heads, hd, n_rot, neox,
                   cos, sin);
}
#endif

}  // namespace

void rope_rows(float* x, int64_t T, int64_t n_heads, int64_t hd, int64_t n_rot, bool neox, const float* cos,
               const float* sin) {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has_fma = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("fma");
    }();
    if (has_fma) return rope_rows_fma(x, T, n_heads, hd, n_rot, neox, cos, sin);
#endif
    rope_rows_with([](float a, float b, float c) { return std::fmaf(a, b, c); }, x, T, n_heads, hd, n_rot, neox, cos,
                   sin);
}

void rope_cos_sin(const float* theta, float* cos, float* sin, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        cos[i] = std::cos(theta[i]);  // the float overloads: cosf / sinf
        sin[i] = std::sin(theta[i]);
    }
}

namespace {

// x += y * scale (scale 1 is exact, so this is x + y then)
void add_scaled(float* x, const float* y, int64_t n, float scale) {
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] + y[i] * scale;
}

}  // namespace

void llama_blocks(const BlockConfig& cfg, const BlockLayer* layers, int64_t first, int64_t last, float* x,
                  int64_t T, int64_t pos0, const BlockCache& cache, const float* cos, const float* sin,
                  int threads, Isa isa, bool simd) {
    const int64_t d = cfg.n_embd, hd = cfg.head_dim, nq = cfg.n_head * hd, nkv = cfg.n_head_kv * hd;
    // h and o live through the whole block; q/k/v/a (attention) and g/u (feed-forward) never at the
    // same time, so they share one buffer: the peak is the larger of the two halves, not their sum.
    std::vector<float> h(T * d), o(T * d), work(T * std::max(2 * nq + 2 * nkv, 2 * cfg.n_ff));
    float* q = work.data();
    float* k = q + T * nq;
    float* v = k + T * nkv;
    float* a = v + T * nkv;
    float* g = work.data();
    float* u = g + T * cfg.n_ff;
#if defined(LOWBIT_HAVE_AVX2)
    auto silu = simd ? avx2::ggml_silu : ref::ggml_silu;
#else
    auto silu = ref::ggml_silu;  // no AVX2 file in this build (AArch64): the avx2 symbols do not exist
#endif
    for (int64_t l = first; l < last; ++l) {
        const BlockLayer& lw = layers[l];
        // attention
        rmsnorm(x, lw.attn_norm, h.data(), T, d, cfg.rms_eps, threads);
        linear(h.data(), lw.wq, lw.bq, q, T, threads, isa);
        linear(h.data(), lw.wk, lw.bk, k, T, threads, isa);
        linear(h.data(), lw.wv, lw.bv, v, T, threads, isa);
        rope_rows(q, T, cfg.n_head, hd, cfg.n_rot, cfg.rope_neox, cos, sin);
        rope_rows(k, T, cfg.n_head_kv, hd, cfg.n_rot, cfg.rope_neox, cos, sin);
        fp16_t* kc = cache.k + l * cache.n_ctx * nkv;
        fp16_t* vc = cache.v + l * cache.n_ctx * nkv;
        for (int64_t i = 0; i < T * nkv; ++i) {
            kc[pos0 * nkv + i] = f32_to_fp16(k[i]);
            vc[pos0 * nkv + i] = f32_to_fp16(v[i]);
        }
        AttentionArgs args{q, kc, vc, a, T, cfg.n_head, cfg.n_head_kv, hd, pos0, cfg.attention_scale,
                           cfg.v512};
        attention_f16(args, threads, simd);
        linear(a, lw.wo, nullptr, o.data(), T, threads, isa);
        add_scaled(x, o.data(), T * d, cfg.residual_scale);
        // feed-forward
        rmsnorm(x, lw.ffn_norm, h.data(), T, d, cfg.rms_eps, threads);
        linear(h.data(), lw.gate, nullptr, g, T, threads, isa);
        linear(h.data(), lw.up, nullptr, u, T, threads, isa);
        for_rows(T, cfg.n_ff, threads, [&](int64_t t) {
            float* gr = g + t * cfg.n_ff;
            const float* ur = u + t * cfg.n_ff;
            silu(gr, gr, cfg.n_ff, cfg.v512);
            for (int64_t i = 0; i < cfg.n_ff; ++i) gr[i] *= ur[i];
        });
        linear(g, lw.down, nullptr, o.data(), T, threads, isa);
        add_scaled(x, o.data(), T * d, cfg.residual_scale);
    }
}

}  // namespace lowbit
