"""Regenerate tests/golden/convert_smollm2.json: llama.cpp's convert_hf_to_gguf.py as the oracle.

Needs torch, transformers and llama.cpp's source (LLAMACPP_DIR, default /tmp/llamacpp):

    pip install torch transformers sentencepiece
    PYTHONPATH=python:tests python tests/make_convert_golden.py

For each case (the shipped SmolLM2 exported by lowbit as an HF checkpoint in f32 or bf16, then
converted with --outtype f32/f16/bf16/q8_0) it runs llama.cpp's converter and `lowbit convert` on the
same directory, checks that the two files agree (tensor names, order, types, shapes, bytes;
metadata except the keys naming the tool), and stores the oracle's digests. test_convert.py then
checks `lowbit convert` against them without torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from convert_golden import compact, differences, digest, tiny_checkpoint

from lowbit.convert import convert_hf_to_gguf, export_gguf_to_hf
from lowbit.model.default import default_model_path

LLAMACPP = os.environ.get("LLAMACPP_DIR", "/tmp/llamacpp")
OUT = os.path.join(os.path.dirname(__file__), "golden", "convert_smollm2.json")
# (dtype of the exported HF checkpoint, --outtype)
CASES = [("f32", "f32"), ("f32", "f16"), ("f32", "bf16"), ("f32", "q8_0"), ("bf16", "f16"), ("bf16", "q8_0"),
         ("tiny-llama", "f32"), ("tiny-llama", "q8_0"), ("tiny-mistral", "f16"), ("tiny-llama3", "f32"),
         ("tiny-spm", "f16")]
# a SentencePiece BPE model (byte fallback, a user-defined and a control piece) trained with the
# sentencepiece library on tests/tokenizer_cases.SPM_CORPUS, 400 pieces, identity normalization (6 KB)
SPM_MODEL = os.path.join(os.path.dirname(__file__), "golden", "spm_tokenizer.model")
SPM_TOKENIZER_CONFIG = {
    "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
    "added_tokens_decoder": {"0": {"content": "<unk>", "special": True}, "1": {"content": "<s>", "special": True},
                             "2": {"content": "</s>", "special": True}},
    "chat_template": "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}</s>{% endfor %}",
    "tokenizer_class": "LlamaTokenizer"}
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
# tiny random checkpoints (SmolLM2's tokenizer): sharded Llama with q/k/v biases, Mistral. (A Qwen2 one
# cannot go through the oracle: transformers 5's AutoTokenizer replaces the pre-tokenizer of a qwen2
# model_type with Qwen2's own, whose fingerprint on SmolLM2's vocabulary llama.cpp does not know.)
TINY = {"tiny-llama": dict(arch="LlamaForCausalLM", sharded=True, bias=True),
        "tiny-mistral": dict(arch="MistralForCausalLM"),
        # Llama 3.2 rope scaling, head_dim 64: the converter adds rope_freqs.weight
        "tiny-llama3": dict(arch="LlamaForCausalLM", n_head=1, n_kv=1, rope_scaling=LLAMA3_ROPE),
        # Llama-2 style: tokenizer.model (SentencePiece) and no tokenizer.json
        "tiny-spm": dict(arch="LlamaForCausalLM", vocab=400)}


def make_sources(tmp: str) -> dict[str, str]:
    """The HF checkpoint of every case source: the shipped SmolLM2 exported by lowbit, and the tiny ones."""
    from lowbit.io import open_gguf
    from lowbit.io.hf_tokenizer import gguf_metadata_to_tokenizer_files

    dirs = {}
    for dt in ("f32", "bf16"):
        dirs[dt] = export_gguf_to_hf(default_model_path(), os.path.join(tmp, f"hf_{dt}"), dt)["output"]
    with open_gguf(default_model_path()) as f:
        tok = gguf_metadata_to_tokenizer_files(f.metadata)
    for name, kw in TINY.items():
        dirs[name] = os.path.join(tmp, name)
        if name == "tiny-spm":
            tiny_checkpoint(dirs[name], tokenizer_files={"tokenizer_config.json": SPM_TOKENIZER_CONFIG}, **kw)
            shutil.copy(SPM_MODEL, os.path.join(dirs[name], "tokenizer.model"))
            cfg_path = os.path.join(dirs[name], "config.json")
            json.dump({**json.load(open(cfg_path)), "bos_token_id": 1, "eos_token_id": 2}, open(cfg_path, "w"))
        else:
            tiny_checkpoint(dirs[name], tokenizer_files=tok, **kw)
    return dirs


def main() -> int:
    golden = {"oracle": "llama.cpp convert_hf_to_gguf.py (" + LLAMACPP + ")", "cases": {}}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        sources = make_sources(tmp)
        for src_dtype, outtype in CASES:
            hf = sources[src_dtype]
            theirs_path = os.path.join(tmp, f"oracle_{src_dtype}_{outtype}.gguf")
            ours_path = os.path.join(tmp, f"lowbit_{src_dtype}_{outtype}.gguf")
            env = {**os.environ, "PYTHONPATH": os.path.join(LLAMACPP, "gguf-py")}
            subprocess.run([sys.executable, os.path.join(LLAMACPP, "convert_hf_to_gguf.py"), hf,
                            "--outfile", theirs_path, "--outtype", outtype],
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            convert_hf_to_gguf(hf, ours_path, outtype)
            theirs, ours = digest(theirs_path), digest(ours_path)
            diff = differences(ours, theirs)
            print(f"hf {src_dtype} -> {outtype}: {'identical' if not diff else f'{len(diff)} differences'}")
            for line in diff[:20]:
                print("   ", line)
            failed |= bool(diff)
            golden["cases"][f"{src_dtype}->{outtype}"] = compact(theirs)
            os.unlink(theirs_path)
            os.unlink(ours_path)
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=0)
        f.write("\n")
    print(f"wrote {OUT}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
