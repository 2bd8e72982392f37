"""The sha256 of SmolLM2's logits on a fixed 24-token prompt and 4 decode steps, with llama.cpp's AVX2
summation orders (an AArch64 build has no AVX-512 variant): tools/neon-check.sh compares this machine's
digest with the one under qemu-aarch64, i.e. the NEON kernels' logits with the x86 ones, bit for bit.
Prints nothing when the model is not installed."""

import hashlib
import sys

import numpy as np

import lowbit.model.llama as llama
from lowbit.io.gguf import open_gguf

try:
    from lowbit.model.default import default_model_path
    path = sys.argv[1] if len(sys.argv) > 1 else default_model_path()
except (ImportError, FileNotFoundError):
    sys.exit(0)
llama._AVX512 = False
model = llama.LlamaModel.from_gguf(open_gguf(path), threads=2)
tokens = np.random.default_rng(0).integers(0, model.cfg.n_vocab, 24)
cache = model.new_cache(32)
out = [model.forward(tokens, 0, cache, logits_from=0)]
out += [model.forward([int(t)], 24 + i, cache) for i, t in enumerate(tokens[:4])]
print(hashlib.sha256(np.ascontiguousarray(np.concatenate(out)).tobytes()).hexdigest())
