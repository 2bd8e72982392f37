"""Models and the llama.cpp quantizer for the mix tests (tests/test_mixes.py) and their goldens.

- synthetic_llama(path, ...): a Llama-shaped GGUF with 256-divisible rows (so K-quants apply without
  fallbacks) and random weights from a fixed seed, F32 or F16; no tokenizer (the quantizer does not
  load one).
- smollm2_f32(path): the shipped SmolLM2 with every tensor dequantized to F32, all metadata kept.
- requantized_gguf(src, dst, qtype): every 2-D weight but the token embedding requantized by lowbit
  (norms stay f32), the model tests' and benchmarks' Q4_0 / Q8_0 SmolLM2.
- llama_quantize(...): llama.cpp's llama_model_quantize through llama-cpp-python, with the imatrix and
  kv overrides passed as llama-quantize passes them.
"""

from __future__ import annotations

import ctypes
import hashlib
import os

import numpy as np

from lowbit.io import GGUFValue, LazyTensor, open_gguf, write_gguf

# name -> (n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab, tied, dtype)
SYNTHETIC = {
    "llama8": dict(n_layer=8, n_embd=256, n_ff=768, n_head=4, n_head_kv=1, n_vocab=1024, tied=False, dtype="f32"),
    "llama32": dict(n_layer=32, n_embd=256, n_ff=512, n_head=4, n_head_kv=2, n_vocab=1024, tied=True, dtype="f16"),
    # 80 layers with GQA: llama.cpp takes it for LLaMA-2-70B and gives attn_v more bits
    "llama80": dict(n_layer=80, n_embd=256, n_ff=256, n_head=4, n_head_kv=1, n_vocab=256, tied=False, dtype="f16"),
}


def synthetic_llama(path: str, n_layer: int, n_embd: int, n_ff: int, n_head: int, n_head_kv: int, n_vocab: int,
                    tied: bool, dtype: str, seed: int = 0) -> str:
    head_dim = n_embd // n_head
    md = {
        "general.architecture": "llama",
        "general.type": "model",
        "general.name": f"synthetic llama {n_layer}L",
        "llama.block_count": n_layer,
        "llama.context_length": 512,
        "llama.embedding_length": n_embd,
        "llama.feed_forward_length": n_ff,
        "llama.attention.head_count": n_head,
        "llama.attention.head_count_kv": n_head_kv,
        "llama.rope.freq_base": GGUFValue(10000.0, "float32"),
        "llama.attention.layer_norm_rms_epsilon": GGUFValue(1e-5, "float32"),
        "llama.rope.dimension_count": head_dim,
        "llama.vocab_size": n_vocab,
        "general.file_type": GGUFValue(0 if dtype == "f32" else 1, "uint32"),
    }
    rng = np.random.default_rng(seed)
    np_dtype = np.float32 if dtype == "f32" else np.float16

    def weight(shape):
        # Student-t: heavier tails than normal, like trained weights; a few outlier columns
        w = rng.standard_t(5, size=shape).astype(np.float32) * np.float32(0.02)
        w[:, rng.integers(0, shape[1], 2)] *= 8
        return w.astype(np_dtype)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    tensors = [("token_embd.weight", weight((n_vocab, n_embd))), ("output_norm.weight", norm(n_embd))]
    if not tied:
        tensors.append(("output.weight", weight((n_vocab, n_embd))))
    kv = n_head_kv * head_dim
    for i in range(n_layer):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", norm(n_embd)),
            (p + "attn_q.weight", weight((n_embd, n_embd))),
            (p + "attn_k.weight", weight((kv, n_embd))),
            (p + "attn_v.weight", weight((kv, n_embd))),
            (p + "attn_output.weight", weight((n_embd, n_embd))),
            (p + "ffn_norm.weight", norm(n_embd)),
            (p + "ffn_gate.weight", weight((n_ff, n_embd))),
            (p + "ffn_up.weight", weight((n_ff, n_embd))),
            (p + "ffn_down.weight", weight((n_embd, n_ff))),
        ]
    write_gguf(path, md, tensors)
    return path


def make_synthetic(name: str, directory: str) -> str:
    path = os.path.join(directory, f"{name}.gguf")
    if not os.path.exists(path):
        synthetic_llama(path, **SYNTHETIC[name])
    return path


def smollm2_f32(path: str) -> str:
    """The shipped SmolLM2 (Q4_1) dequantized to an F32 GGUF: same metadata, same tensor order,
    general.file_type 0 (ALL_F32). Streamed one tensor at a time."""
    from lowbit.model.default import default_model_path

    with open_gguf(default_model_path()) as f:
        md = dict(f.typed_metadata)
        md["general.file_type"] = GGUFValue(0, "uint32")
        tensors = [(n, LazyTensor("f32", t.shape, lambda n=n: f.array(n))) for n, t in f.tensors.items()]
        write_gguf(path, md, tensors)
    return path


def file_digest(path: str) -> dict:
    """Types and sha256 of every tensor's bytes, and of the whole file."""
    with open(path, "rb") as fh:
        whole = hashlib.sha256(fh.read()).hexdigest()
    with open_gguf(path) as f:
        types = {n: t.qtype for n, t in f.tensors.items()}
        tensor_sha = {n: hashlib.sha256(f._map[t.offset:t.offset + t.nbytes]).hexdigest()[:16]
                      for n, t in f.tensors.items()}
    return {"sha256": whole, "types": types, "tensor_sha256": tensor_sha}


# --------------------------------------------------------------------------------------------------
# llama.cpp's quantizer


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except Exception:
        return False
    return True


def _ggml_type_id(name: str) -> int:
    import lowbit

    return lowbit.type_info(name)["gguf_id"]


_LOG_CB = None


def _quiet(llama_cpp):
    global _LOG_CB
    if _LOG_CB is None:
        _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, user: None)
        llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p())


def imatrix_for_llama_cpp(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """An imatrix GGUF read with the gguf package (not lowbit's reader), normalised as llama-quantize's
    load_imatrix does: sums / count in float32, per expert. Returns (name -> values, file metadata)."""
    import gguf

    r = gguf.GGUFReader(path)
    sums, counts = {}, {}
    for t in r.tensors:
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-8]] = np.array(t.data, np.float32).reshape(-1)
        elif t.name.endswith(".counts"):
            counts[t.name[:-7]] = np.array(t.data, np.float32).reshape(-1)
    out = {}
    for name, s in sums.items():
        c = np.array([float(round(x)) for x in counts[name]], np.float32)
        s2 = s.reshape(len(c), -1)
        out[name] = np.where(c[:, None] > 0, s2 / np.where(c > 0, c, 1)[:, None], np.float32(1)).astype(
            np.float32).reshape(-1)
    meta = {}
    for key in ("imatrix.datasets", "imatrix.chunk_count"):
        field = r.fields.get(key)
        if field is not None:
            meta[key] = field.contents()
    return out, meta


def llama_quantize(src: str, dst: str, ftype: int, *, threads: int = 2, imatrix_path: str | None = None,
                   pure: bool = False, output_tensor_type: str | None = None,
                   token_embedding_type: str | None = None, leave_output_tensor: bool = False) -> None:
    """llama_model_quantize with the settings llama-quantize would pass for these flags."""
    import llama_cpp

    _quiet(llama_cpp)
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype if ftype >= 0 else 0  # COPY: llama-quantize passes ALL_F32 with only_copy
    p.only_copy = ftype < 0
    p.nthread = threads
    p.allow_requantize = True
    p.pure = pure
    p.quantize_output_tensor = not leave_output_tensor
    if output_tensor_type:
        p.output_tensor_type = _ggml_type_id(output_tensor_type)
    if token_embedding_type:
        p.token_embedding_type = _ggml_type_id(token_embedding_type)
    keep = []  # ctypes buffers that must outlive the call
    if imatrix_path is not None:
        values, meta = imatrix_for_llama_cpp(imatrix_path)
        arr = (llama_cpp.llama_model_imatrix_data * (len(values) + 1))()
        for i, (name, v) in enumerate(values.items()):
            buf = np.ascontiguousarray(v, np.float32)
            keep.append(buf)
            arr[i].name = name.encode()
            arr[i].data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = buf.size
        p.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        keep.append(arr)
        overrides = [("quantize.imatrix.file", imatrix_path)]
        datasets = meta.get("imatrix.datasets") or []
        if datasets:
            overrides.append(("quantize.imatrix.dataset", datasets[0]))
        overrides.append(("quantize.imatrix.entries_count", len(values)))
        if meta.get("imatrix.chunk_count", 0) > 0:
            overrides.append(("quantize.imatrix.chunks_count", int(meta["imatrix.chunk_count"])))
        kvo = (llama_cpp.llama_model_kv_override * (len(overrides) + 1))()
        for i, (key, val) in enumerate(overrides):
            kvo[i].key = key.encode()
            if isinstance(val, str):
                kvo[i].tag = llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR
                kvo[i].value.val_str = val.encode()[:127]
            else:
                kvo[i].tag = llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT
                kvo[i].value.val_i64 = val
        kvo[len(overrides)].key = b""
        p.kv_overrides = ctypes.cast(kvo, ctypes.POINTER(llama_cpp.llama_model_kv_override))
        keep.append(kvo)
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src}, ftype={ftype}) failed")


def synthetic_imatrix(path: str, model_path: str, seed: int = 1) -> str:
    """An imatrix for every blk.* weight of a model, from a fixed seed, in llama.cpp's GGUF format
    (written by lowbit.imatrix.save_imatrix): positive sums with a few dominant columns, 4 chunks of 512."""
    from lowbit.imatrix import IMatrix, save_imatrix

    rng = np.random.default_rng(seed)
    sums, counts = {}, {}
    with open_gguf(model_path) as f:
        for name, t in f.tensors.items():
            if name.startswith("blk.") and len(t.shape) == 2:
                k = t.shape[-1]
                s = rng.gamma(2.0, 1.0, size=k) * 2048
                s[rng.integers(0, k, 3)] *= 50
                sums[name] = s.astype(np.float32).reshape(1, -1)
                counts[name] = np.array([2048], np.int64)
    save_imatrix(path, IMatrix(sums=sums, counts=counts, datasets=["synthetic"], chunk_count=4, chunk_size=512))
    return path


def sha256_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class _GGUFInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def read_imatrix_with_ggml(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """Parse an imatrix GGUF with ggml's own gguf reader (libggml-base, as llama-quantize's
    common_imatrix_load does): (name -> in_sum2 floats, name -> counts, {chunk_count, chunk_size,
    datasets}). Raises if ggml refuses the file."""
    import ggml_oracle

    lib = ggml_oracle._lib()
    lib.gguf_init_from_file.restype = ctypes.c_void_p
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, _GGUFInitParams]
    for fn, res, args in (("gguf_get_n_tensors", ctypes.c_int64, [ctypes.c_void_p]),
                          ("gguf_get_tensor_name", ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_tensor_type", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_tensor_offset", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_tensor_size", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_data_offset", ctypes.c_size_t, [ctypes.c_void_p]),
                          ("gguf_find_key", ctypes.c_int64, [ctypes.c_void_p, ctypes.c_char_p]),
                          ("gguf_get_val_u32", ctypes.c_uint32, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_arr_n", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
                          ("gguf_get_arr_str", ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t]),
                          ("gguf_free", None, [ctypes.c_void_p])):
        getattr(lib, fn).restype = res
        getattr(lib, fn).argtypes = args
    ctx = lib.gguf_init_from_file(path.encode(), _GGUFInitParams(True, None))
    if not ctx:
        raise ValueError(f"ggml's gguf reader refused {path}")
    try:
        raw = np.fromfile(path, np.uint8)
        base = lib.gguf_get_data_offset(ctx)
        sums, counts = {}, {}
        for i in range(lib.gguf_get_n_tensors(ctx)):
            name = lib.gguf_get_tensor_name(ctx, i).decode()
            assert lib.gguf_get_tensor_type(ctx, i) == 0, f"{name} is not F32"
            off, size = base + lib.gguf_get_tensor_offset(ctx, i), lib.gguf_get_tensor_size(ctx, i)
            data = raw[off:off + size].view(np.float32)
            if name.endswith(".in_sum2"):
                sums[name[:-8]] = data
            elif name.endswith(".counts"):
                counts[name[:-7]] = data
        meta = {}
        for key in ("imatrix.chunk_count", "imatrix.chunk_size"):
            kid = lib.gguf_find_key(ctx, key.encode())
            meta[key] = lib.gguf_get_val_u32(ctx, kid) if kid >= 0 else None
        kid = lib.gguf_find_key(ctx, b"imatrix.datasets")
        n = lib.gguf_get_arr_n(ctx, kid) if kid >= 0 else 0
        meta["imatrix.datasets"] = [lib.gguf_get_arr_str(ctx, kid, j).decode() for j in range(n)] if kid >= 0 else None
        return sums, counts, meta
    finally:
        lib.gguf_free(ctx)


def big_llama(path: str, n_layer: int = 2, n_embd: int = 4096, n_ff: int = 11008, n_vocab: int = 32000,
              dtype: str = "f32") -> str:
    """A Llama-7B-shaped GGUF (2 layers by default: 2.7 GB in F32) written one tensor at a time, each
    tensor from its own seed, for measuring quantize_model's memory on a model larger than RAM
    budgets of small machines. Not for the goldens."""
    np_dtype = np.float32 if dtype == "f32" else np.float16
    md = {
        "general.architecture": "llama", "general.name": "big synthetic llama",
        "llama.block_count": n_layer, "llama.context_length": 4096, "llama.embedding_length": n_embd,
        "llama.feed_forward_length": n_ff, "llama.attention.head_count": 32, "llama.attention.head_count_kv": 32,
        "llama.rope.freq_base": GGUFValue(10000.0, "float32"),
        "llama.attention.layer_norm_rms_epsilon": GGUFValue(1e-5, "float32"),
        "llama.rope.dimension_count": n_embd // 32, "llama.vocab_size": n_vocab,
        "general.file_type": GGUFValue(0 if dtype == "f32" else 1, "uint32"),
    }
    shapes = [("token_embd.weight", (n_vocab, n_embd)), ("output_norm.weight", (n_embd,)),
              ("output.weight", (n_vocab, n_embd))]
    for i in range(n_layer):
        p = f"blk.{i}."
        shapes += [(p + "attn_norm.weight", (n_embd,)), (p + "attn_q.weight", (n_embd, n_embd)),
                   (p + "attn_k.weight", (n_embd, n_embd)), (p + "attn_v.weight", (n_embd, n_embd)),
                   (p + "attn_output.weight", (n_embd, n_embd)), (p + "ffn_norm.weight", (n_embd,)),
                   (p + "ffn_gate.weight", (n_ff, n_embd)), (p + "ffn_up.weight", (n_ff, n_embd)),
                   (p + "ffn_down.weight", (n_embd, n_ff))]

    def make(i: int, shape):
        rng = np.random.default_rng(i)
        if len(shape) == 1:
            return np.ones(shape, np.float32)
        return (rng.standard_normal(shape, np.float32) * np.float32(0.02)).astype(np_dtype, copy=False)

    tensors = [(n, LazyTensor("f32" if len(s) == 1 else dtype, s, lambda i=i, s=s: make(i, s)))
               for i, (n, s) in enumerate(shapes)]
    write_gguf(path, md, tensors)
    return path


def requantized_gguf(src_path: str, dst_path: str, qtype: str) -> str:
    """src with every 2-D weight except token_embd.weight dequantized and quantized to qtype by lowbit."""
    import lowbit

    src = open_gguf(src_path)
    tensors = []
    for name, info in src.tensors.items():
        t = src.tensor(name)
        if len(info.shape) == 2 and name != "token_embd.weight":
            t = lowbit.quantize(t.dequantize(), qtype)
        tensors.append((name, t))
    write_gguf(dst_path, dict(src.typed_metadata), tensors)
    return dst_path
