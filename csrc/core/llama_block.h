#pragma once
// The fused forward pass of python/lowbit/model/llama.py's LlamaModel.block, for a run of consecutive
// CPU layers in one call: the Python block (the spec) pays ~14 us of Python per matmul and a numpy
// temporary per elementwise op, which at one decoded token is a large share of the time. Every step
// here rounds as the Python one does (see llama_block.cpp), so the two paths give the same bits.
#include <cstdint>

#include "blocks.h"
#include "kernels.h"
#include "matmul.h"
#include "types.h"

namespace lowbit {

struct BlockWeight {          // one weight matrix: n rows of k weights of type `type`
    const void* data = nullptr;
    QType type = QType::F32;
    int64_t n = 0, k = 0;
    Layout layout = Layout::GGUF;
};

struct BlockLayer {
    const float* attn_norm = nullptr;                 // (n_embd,)
    BlockWeight wq, wk, wv, wo;
    const float* bq = nullptr;                        // optional biases (qwen2)
    const float* bk = nullptr;
    const float* bv = nullptr;
    const float* ffn_norm = nullptr;                  // (n_embd,)
    BlockWeight gate, up, down;
};

struct BlockConfig {
    int64_t n_embd, n_ff, n_head, n_head_kv, head_dim, n_rot;
    bool rope_neox;         // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
    float rms_eps;
    float attention_scale;  // already resolved (1/sqrt(head_dim) unless granite sets it)
    float residual_scale;   // granite; 1 otherwise
    bool v512;              // ggml's AVX-512 exp variant for softmax and SiLU
};

struct BlockCache {         // the KV cache, (n_layer, n_ctx, n_head_kv, head_dim) f16 each
    fp16_t* k;
    fp16_t* v;
    int64_t n_ctx;
};

// Runs layers [first, last) on x: (T, n_embd) f32 in place, for tokens at positions pos0..pos0+T-1,
// writing their K/V into the cache. cos/sin: (T, n_rot/2) f32 RoPE tables (llama.rope_angles).
// isa: for the matmuls; simd: AVX2 softmax/SiLU/attention kernels (the caller checked the CPU).
// ggml's RoPE pieces, shared with the Python spec (model/llama.py calls them through _core):
// cos/sin of n f32 angles with libm's cosf/sinf, as ggml_rope_cache_init (not the correctly rounded
// values: glibc's float functions differ from them in about 1% of SmolLM2's angles);
void rope_cos_sin(const float* theta, float* cos, float* sin, int64_t n);
// and the rotation of the first n_rot dims of each head of x: (T, n_heads, hd), in place, rounded as
// GCC compiles ggml's `x0*cos - x1*sin` / `x0*sin + x1*cos`: the first product fused into the add.
void rope_rows(float* x, int64_t T, int64_t n_heads, int64_t hd, int64_t n_rot, bool neox, const float* cos,
               const float* sin);

void llama_blocks(const BlockConfig& cfg, const BlockLayer* layers, int64_t first, int64_t last, float* x,
                  int64_t T, int64_t pos0, const BlockCache& cache, const float* cos, const float* sin,
                  int threads, Isa isa, bool simd);

}  // namespace lowbit
