"""llama-imatrix's collection, reproduced on llama.cpp itself (llama-cpp-python does not ship the tool).

llama-imatrix is a ggml eval callback: for every MUL_MAT whose weight is named blk.* and whose
activation batch is F32 with >= 16 rows, it adds x^2 of every activation row to a per-weight float32
sum and the row count to a per-weight counter. This module installs the same callback on a llama.cpp
context through ctypes and runs the same chunks (all outputs requested, as llama-imatrix does, so the
last layer's FFN sees every token), giving llama.cpp's sums to compare with lowbit's.
"""

from __future__ import annotations

import ctypes

import numpy as np


class _GGMLTensor(ctypes.Structure):  # ggml.h's struct ggml_tensor (GGML_MAX_DIMS 4, MAX_SRC 10)
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
                ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]


def _weight_name(raw: bytes) -> str:
    """filter_tensor_name: 'CUDA0#blk.0.attn_k.weight#0' -> 'blk.0.attn_k.weight'."""
    name = raw.decode(errors="replace")
    if "#" in name:
        name = name.split("#")[1]
    return name


def llama_cpp_imatrix(model_path: str, token_chunks, threads: int = 2) -> tuple[dict, dict]:
    """(name -> float32 sums, name -> row count) over the chunks, collected inside llama.cpp."""
    import llama_cpp

    import ggml_oracle
    import quant_models

    quant_models._quiet(llama_cpp)
    lib = ggml_oracle._lib()
    lib.ggml_op_name.restype = ctypes.c_char_p
    lib.ggml_op_name.argtypes = [ctypes.c_int]
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}

    def collect(t_ptr, ask, user_data):
        t = ctypes.cast(t_ptr, ctypes.POINTER(_GGMLTensor)).contents
        if lib.ggml_op_name(t.op) != b"MUL_MAT":
            return False
        src0 = ctypes.cast(t.src[0], ctypes.POINTER(_GGMLTensor)).contents
        src1 = ctypes.cast(t.src[1], ctypes.POINTER(_GGMLTensor)).contents
        name = _weight_name(src0.name)
        if ask:
            return src1.ne[1] >= 16 and src1.type == 0 and name.startswith("blk.")
        ne0, rows = src1.ne[0], src1.ne[1] * src1.ne[2] * src1.ne[3]
        assert src1.nb[0] == 4 and src1.nb[1] == 4 * ne0, "expected a contiguous F32 activation batch"
        buf = (ctypes.c_char * (4 * ne0 * rows)).from_address(src1.data)
        x = np.frombuffer(buf, np.float32).reshape(rows, ne0)
        acc = sums.get(name, np.zeros(ne0, np.float32))
        sums[name] = np.cumsum(np.concatenate([acc[None], x * x]), axis=0, dtype=np.float32)[-1]
        counts[name] = counts.get(name, 0) + rows
        return True

    callback = llama_cpp.ggml_backend_sched_eval_callback(collect)
    mp = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(model_path.encode(), mp)
    n_ctx = len(token_chunks[0])
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = cp.n_batch = cp.n_ubatch = n_ctx
    cp.n_threads = cp.n_threads_batch = threads
    cp.flash_attn_type = getattr(llama_cpp, "LLAMA_FLASH_ATTN_TYPE_DISABLED", 0)  # lowbit follows the non-FA path
    cp.cb_eval = callback
    cp.cb_eval_user_data = None
    ctx = llama_cpp.llama_init_from_model(model, cp)
    batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)
    try:
        for chunk in token_chunks:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
            batch.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                batch.token[i] = int(tok)
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1  # every output, as llama-imatrix asks
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
    return sums, counts
