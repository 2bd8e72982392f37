"""Importance matrices as llama-imatrix defines them, and their files.

For every weight matrix W (n_out, k) of the transformer blocks, the importance of input column j is
the mean over the calibration tokens of x_j^2, x being the activation row W multiplies. llama-imatrix
collects it from ggml's eval callback on every MUL_MAT whose weight is named blk.*: per tensor a sum
of squares per column (accumulated row after row in float32) and a count of rows. lowbit collects
the same from its own forward pass (model/llama.py's matmul observer): the text is tokenized as one
document, cut into chunks of n_ctx tokens, the first token of each chunk replaced by BOS when the
vocabulary adds one, each chunk run with an empty KV cache.

Files (both read; GGUF written):
- GGUF, llama.cpp's current format: general.type = "imatrix", imatrix.datasets (strings),
  imatrix.chunk_count, imatrix.chunk_size (u32); per weight NAME two f32 tensors, NAME.in_sum2
  (n_expert, k) with the sums and NAME.counts (n_expert, 1) with the row counts, in name order.
- legacy .dat: i32 n_entries, then per entry i32 name length, name, i32 ncall, i32 nval, nval f32
  holding mean * ncall; then optionally i32 chunk count and i32 length + dataset name.

The values handed to the quantizer are sums / counts in float32 (counts of 0 give 1), exactly what
llama-quantize computes when it loads either file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import time
from typing import Callable

import numpy as np

from .io.gguf import GGUFValue, open_gguf, write_gguf

__all__ = ["IMatrix", "collect_imatrix", "compute_imatrix", "imatrix_chunks", "load_imatrix", "save_imatrix"]

log = logging.getLogger(__name__)

_SUMS, _COUNTS = ".in_sum2", ".counts"
_MAX_KV_STRING = 127  # llama-quantize copies strings into a 128-byte kv override


@dataclasses.dataclass
class IMatrix:
    """sums[name]: (n_expert, k) float32 sums of squared activations; counts[name]: (n_expert,) rows
    seen. values[name]: the flat (n_expert * k,) float32 importance the quantizer uses."""

    sums: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    datasets: list[str] = dataclasses.field(default_factory=list)
    chunk_count: int = 0
    chunk_size: int = 0
    path: str | None = None
    values: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.values:
            self.values = {n: _mean(self.sums[n], self.counts[n]) for n in self.sums}

    def quantize_metadata(self) -> dict:
        """The keys llama-quantize adds to a model quantized with this imatrix (as kv overrides)."""
        md = {}
        if self.path is not None:
            md["quantize.imatrix.file"] = GGUFValue(_clip(self.path), "string")
        if self.datasets:
            md["quantize.imatrix.dataset"] = GGUFValue(_clip(self.datasets[0]), "string")
        md["quantize.imatrix.entries_count"] = GGUFValue(len(self.values), "uint32")
        if self.chunk_count > 0:
            md["quantize.imatrix.chunks_count"] = GGUFValue(self.chunk_count, "uint32")
        return md


def _clip(s: str) -> str:
    b = s.encode("utf-8")[:_MAX_KV_STRING]
    return b.decode("utf-8", errors="ignore")


def _mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sums / count per expert in float32; an expert never seen gets 1 (llama-quantize's rule)."""
    s = np.asarray(sums, np.float32).reshape(len(counts), -1)
    c = np.asarray(counts, np.float32).reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(c > 0, s / np.where(c > 0, c, np.float32(1)), np.float32(1))
    return out.astype(np.float32).reshape(-1)


# --------------------------------------------------------------------------------------------------
# Files


def load_imatrix(path) -> IMatrix:
    """Read an imatrix file: llama.cpp's GGUF format or the legacy .dat. Raises ValueError for a
    malformed file, non-finite values, or a GGUF file without imatrix metadata."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    im = _load_gguf(path) if magic == b"GGUF" else _load_legacy(path)
    for name, v in im.values.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"[load_imatrix] {path}: entry {name} holds non-finite values")
    return im


def _load_gguf(path: str) -> IMatrix:
    with open_gguf(path) as f:
        md = f.metadata
        if not all(k in md for k in ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")):
            raise ValueError(f"[load_imatrix] {path}: missing imatrix metadata (imatrix.datasets, "
                             f"imatrix.chunk_count, imatrix.chunk_size); not an imatrix file?")
        sums, counts = {}, {}
        for tname, info in f.tensors.items():
            for suffix, into in ((_SUMS, sums), (_COUNTS, counts)):
                if tname.endswith(suffix):
                    if info.qtype != "f32":
                        raise ValueError(f"[load_imatrix] {path}: {tname} is {info.qtype}, expected f32")
                    into[tname[: -len(suffix)]] = np.array(f.array(tname), np.float32).reshape(-1)
        if not sums and not counts:
            raise ValueError(f"[load_imatrix] {path}: no {_SUMS} / {_COUNTS} tensors")
        for name in sorted(set(sums) | set(counts)):
            if name not in sums or name not in counts:
                raise ValueError(f"[load_imatrix] {path}: mismatched sums and counts for {name}")
            if sums[name].size % counts[name].size:
                raise ValueError(f"[load_imatrix] {path}: {name} has {sums[name].size} sums for "
                                 f"{counts[name].size} counts")
        # llama.cpp rounds the stored float counts to integers (lround) before dividing
        counts = {n: np.floor(np.abs(c.astype(np.float64)) + 0.5) * np.sign(c) for n, c in counts.items()}
        datasets = md["imatrix.datasets"]
        return IMatrix(sums={n: sums[n].reshape(counts[n].size, -1) for n in sums},
                       counts={n: counts[n].astype(np.int64) for n in counts},
                       datasets=[str(d) for d in datasets] if isinstance(datasets, list) else [],
                       chunk_count=int(md["imatrix.chunk_count"]), chunk_size=int(md["imatrix.chunk_size"]),
                       path=path)


class _Bytes:
    """Bounds-checked little-endian reads of an untrusted legacy file."""

    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left():
            raise ValueError(f"[load_imatrix] {self.path}: truncated {what} at byte {self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i32(self, what: str) -> int:
        return struct.unpack("<i", self.take(4, what))[0]


def _load_legacy(path: str) -> IMatrix:
    with open(path, "rb") as fh:
        r = _Bytes(fh.read(), path)
    n = r.i32("entry count")
    if n < 1 or n * 12 > r.left():
        raise ValueError(f"[load_imatrix] {path}: not an imatrix file (entry count {n} for {r.left()} bytes)")
    sums, counts, values = {}, {}, {}
    for i in range(n):
        length = r.i32(f"name length of entry {i}")
        try:
            name = r.take(length, f"name of entry {i}").decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"[load_imatrix] {path}: name of entry {i} is not UTF-8") from None
        ncall = r.i32(f"ncall of {name}")
        nval = r.i32(f"value count of {name}")
        if nval < 1:
            raise ValueError(f"[load_imatrix] {path}: entry {name} has {nval} values")
        v = np.frombuffer(r.take(4 * nval, f"values of {name}"), "<f4").astype(np.float32)
        # legacy files store mean * ncall; llama-quantize divides by ncall again
        values[name] = v / np.float32(ncall) if ncall > 0 else v.copy()
        sums[name], counts[name] = v.reshape(1, -1), np.array([max(ncall, 0)], np.int64)
    chunk_count, datasets = 0, []
    if r.left() >= 4:
        chunk_count = r.i32("chunk count")
        if r.left() >= 4:
            length = r.i32("dataset name length")
            if 0 < length <= r.left():
                datasets.append(r.take(length, "dataset name").decode("utf-8", errors="replace"))
    return IMatrix(sums=sums, counts=counts, datasets=datasets, chunk_count=chunk_count, chunk_size=0,
                   path=path, values=values)


def save_imatrix(path, im: IMatrix) -> None:
    """Write im in llama.cpp's GGUF imatrix format (what llama-imatrix writes by default), atomically."""
    md = {
        "general.type": "imatrix",
        "imatrix.datasets": GGUFValue(list(im.datasets), "string"),
        "imatrix.chunk_count": GGUFValue(int(im.chunk_count), "uint32"),
        "imatrix.chunk_size": GGUFValue(int(im.chunk_size), "uint32"),
    }
    tensors = []
    for name in sorted(im.sums):
        counts = np.asarray(im.counts[name], np.float32).reshape(-1)
        sums = np.asarray(im.sums[name], np.float32).reshape(counts.size, -1)
        if counts.size == 1:  # ggml writes a (k, 1) tensor as 1-D
            tensors += [(name + _SUMS, sums.reshape(-1)), (name + _COUNTS, counts)]
        else:
            tensors += [(name + _SUMS, sums), (name + _COUNTS, counts.reshape(-1, 1))]
    write_gguf(path, md, tensors)


# --------------------------------------------------------------------------------------------------
# Collection


class _Collector:
    """The matmul observer: per weight, float32 sums of x^2 row after row (llama-imatrix's order)."""

    def __init__(self, names: dict[int, str]):
        self.names = names  # id(weight QuantizedTensor) -> GGUF name
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def __call__(self, w, x: np.ndarray) -> None:
        name = self.names.get(id(w))
        if name is None:
            return
        x2 = x.reshape(-1, x.shape[-1]).astype(np.float32)
        if x2.shape[0] < 16:  # llama-imatrix ignores small batches
            return
        acc = self.sums.get(name)
        if acc is None:
            acc = np.zeros(x2.shape[1], np.float32)
        # cumulative sum in float32 from the running total: the same additions in the same order as
        # llama.cpp's `acc[j] += x[j] * x[j]` loop over rows
        stacked = np.concatenate([acc[None, :], x2 * x2], axis=0)
        self.sums[name] = np.cumsum(stacked, axis=0, dtype=np.float32)[-1]
        self.counts[name] = self.counts.get(name, 0) + x2.shape[0]


def _weight_names(model, process_output: bool) -> dict[int, str]:
    names = {}
    for i, lw in enumerate(model.w.layers):
        for attr, tn in (("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                         ("w_gate", "ffn_gate"), ("w_up", "ffn_up"), ("w_down", "ffn_down")):
            names[id(getattr(lw, attr))] = f"blk.{i}.{tn}.weight"
    if process_output and model.w.output is not model.w.tok_embd:
        names[id(model.w.output)] = "output.weight"
    return names


def collect_imatrix(model, token_chunks, *, process_output: bool = False, dataset: str = "",
                    progress: Callable[[int, int], None] | None = None) -> IMatrix:
    """Run a LlamaModel over each token chunk (a 1-D int array, its own sequence from position 0 with an
    empty KV cache) and collect every blk.* weight's sums of squared inputs and row counts."""
    chunks = [np.asarray(c, np.int64) for c in token_chunks]
    if not chunks:
        raise ValueError("[imatrix] no token chunks")
    collector = _Collector(_weight_names(model, process_output))
    t0 = time.perf_counter()
    model.observer = collector
    try:
        for i, chunk in enumerate(chunks):
            cache = model.new_cache(len(chunk))
            model.forward(chunk, 0, cache, logits_from=0 if process_output else len(chunk) - 1)
            if progress is not None:
                progress(i + 1, len(chunks))
    finally:
        model.observer = None
    if not collector.counts:
        raise ValueError("[imatrix] no matmul saw 16 or more tokens (llama-imatrix's minimum); use longer chunks")
    n_ctx = len(chunks[0])
    log.info("imatrix: %d chunks of %d tokens in %.1f s", len(chunks), n_ctx, time.perf_counter() - t0)
    return IMatrix(sums={n: s.reshape(1, -1) for n, s in collector.sums.items()},
                   counts={n: np.array([c], np.int64) for n, c in collector.counts.items()},
                   datasets=[dataset] if dataset else [], chunk_count=max(collector.counts.values()) // n_ctx,
                   chunk_size=n_ctx)


def compute_imatrix(model_path, text: str, *, n_ctx: int = 512, chunks: int | None = None,
                    threads: int | None = None, dataset: str = "", process_output: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> IMatrix:
    """The importance matrix of the GGUF model at model_path over text, as llama-imatrix computes it
    (see the module docstring): the whole text tokenized once (BOS as the vocabulary says), cut into
    chunks of n_ctx tokens, at most `chunks` of them, each chunk's first token replaced by BOS when the
    vocabulary adds one. dataset: the name stored in imatrix.datasets (llama-imatrix stores the text
    file's path)."""
    from .model.llama import LlamaModel
    from .model.tokenizer import Tokenizer

    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 16:
        raise ValueError(f"[imatrix] ctx must be an int >= 16 (llama-imatrix skips smaller batches), got {n_ctx!r}")
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1):
        raise ValueError(f"[imatrix] chunks must be an int >= 1, got {chunks!r}")
    f = open_gguf(model_path)
    model = LlamaModel.from_gguf(f, threads=threads)
    tok = Tokenizer.from_gguf_metadata(f.metadata)
    tokens = tok.encode(text, add_bos=None, parse_special=False)
    bos = tok.bos_id if tok.add_bos else None
    token_chunks = imatrix_chunks(tokens, n_ctx, chunks, bos)
    return collect_imatrix(model, token_chunks, process_output=process_output, dataset=dataset, progress=progress)


def imatrix_chunks(tokens, n_ctx: int, chunks: int | None, bos_id: int | None) -> list[np.ndarray]:
    """llama-imatrix's chunks: consecutive runs of n_ctx tokens (the tail dropped), at most `chunks`,
    each with its first token replaced by BOS when the vocabulary adds one; at least two chunks' worth
    of tokens are required."""
    tokens = np.asarray(tokens, np.int64)
    if len(tokens) < 2 * n_ctx:
        raise ValueError(f"[imatrix] the text has {len(tokens)} tokens; at least {2 * n_ctx} (two chunks of "
                         f"{n_ctx}) are needed")
    n_chunk = len(tokens) // n_ctx if chunks is None else min(chunks, len(tokens) // n_ctx)
    out = []
    for c in range(n_chunk):
        chunk = tokens[c * n_ctx:(c + 1) * n_ctx].copy()
        if bos_id is not None:
            chunk[0] = bos_id
        out.append(chunk)
    return out
