"""Interop: our GPTQ / AWQ checkpoints read by independent implementations, and theirs read by lowbit.

The independent implementations are the installed libraries' own code, imported by file so their
package __init__ (which pulls in model classes, datasets, CUDA builds) does not run:
- AutoGPTQ 0.7.1 (`pip install --no-deps auto-gptq`): auto_gptq/nn_modules/qlinear/qlinear_cuda.py,
  QuantLinear: `pack` (their writer) and the CPU branch of `forward` (their unpacking + dequantization,
  g_idx included; it multiplies x by the dequantized weight, so x = identity returns the weight);
- AutoAWQ 0.2.9 (`pip install --no-deps autoawq accelerate`): awq/utils/packing_utils.py `dequantize_gemm`
  (their GEMM-layout reader) and awq/modules/linear/gemm.py `WQLinear_GEMM.from_linear` (their writer).

Both need torch; CI does not install torch, so these tests skip there (the layouts are also pinned by
tests/test_calib.py's golden packing vectors). Scales are handed to the libraries as float32 so their
products scale * (q - zero) are exact, as ours are: any difference is a difference in the integers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types

import numpy as np
import pytest
from lowbit.calib.gptq import gptq
from lowbit.calib.grid import GridSpec, rtn
from lowbit.io.gptq_awq import (
    dequantize_grid,
    pack_awq,
    pack_gptq,
    unpack_awq,
    unpack_gptq,
)

pytestmark = pytest.mark.interop

torch = pytest.importorskip("torch", reason="the interop tests need torch (not installed in CI)")


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    return next(iter(spec.submodule_search_locations))


def _import_without_package_init(package: str, module: str):
    """Import package.module (dotted) with empty stand-ins for the package and its subpackages, so only
    the module's own imports run. The stand-ins are removed again afterwards."""
    root = _package_dir(package)
    parts = module.split(".")
    saved = {k: v for k, v in sys.modules.items() if k == package or k.startswith(package + ".")}
    try:
        for k in saved:
            del sys.modules[k]
        for depth in range(len(parts)):
            name = ".".join([package] + parts[:depth])
            stub = types.ModuleType(name)
            stub.__path__ = [os.path.join(root, *parts[:depth])]
            sys.modules[name] = stub
        try:
            return importlib.import_module(f"{package}.{module}")
        except Exception as e:  # noqa: BLE001 (a missing optional dependency of theirs: not our failure)
            pytest.skip(f"cannot import {package}.{module}: {type(e).__name__}: {e}")
    finally:
        for k in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def autogptq():
    return _import_without_package_init("auto_gptq", "nn_modules.qlinear.qlinear_cuda")


@pytest.fixture(scope="module")
def awq_packing():
    return _import_without_package_init("awq", "utils.packing_utils")


@pytest.fixture(scope="module")
def awq_gemm():
    return _import_without_package_init("awq", "modules.linear.gemm")


def _autogptq_dequantize(mod, tensors: dict, bits: int, group_size: int) -> np.ndarray:
    """AutoGPTQ's CPU path on the four GPTQ tensors -> (n, k) f32."""
    k = tensors["g_idx"].shape[0]
    n = tensors["scales"].shape[1]
    lin = mod.QuantLinear(bits, group_size, k, n, bias=False)
    lin.qweight = torch.from_numpy(np.asarray(tensors["qweight"], np.int32))
    lin.qzeros = torch.from_numpy(np.asarray(tensors["qzeros"], np.int32))
    lin.scales = torch.from_numpy(np.asarray(tensors["scales"], np.float32))
    lin.g_idx = torch.from_numpy(np.asarray(tensors["g_idx"], np.int32))
    with torch.no_grad():
        return lin(torch.eye(k, dtype=torch.float32)).numpy().T.copy()


def _awq_dequantize(mod, tensors: dict, group_size: int) -> np.ndarray:
    w = mod.dequantize_gemm(torch.from_numpy(np.asarray(tensors["qweight"], np.int32)),
                            torch.from_numpy(np.asarray(tensors["qzeros"], np.int32)),
                            torch.from_numpy(np.asarray(tensors["scales"], np.float32)), 4, group_size)
    return w.numpy().T.copy()


def _layer(n=128, k=256, seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    X = (rng.standard_normal((512, k)) * (1 + 3 * rng.random(k))).astype(np.float32)
    return W, 2.0 / len(X) * (X.T @ X).astype(np.float64)


# --- our packing, their reading ----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("sym", [False, True])
def test_gptq_layout_read_by_autogptq(autogptq, bits, sym):
    W, H = _layer()
    ql = gptq(W, H, GridSpec(bits, 64, sym))
    got = _autogptq_dequantize(autogptq, pack_gptq(ql.q, ql.scales, ql.zeros, ql.g_idx, bits), bits, 64)
    np.testing.assert_array_equal(got, ql.dequantize())


def test_gptq_act_order_permuted_g_idx_read_by_autogptq(autogptq):
    W, H = _layer(seed=1)
    ql = gptq(W, H, GridSpec(4, 32, False), act_order=True, static_groups=False)
    assert np.any(np.diff(ql.g_idx) < 0)  # the case loaders must follow g_idx for
    got = _autogptq_dequantize(autogptq, pack_gptq(ql.q, ql.scales, ql.zeros, ql.g_idx, 4), 4, 32)
    np.testing.assert_array_equal(got, ql.dequantize())


def test_awq_layout_read_by_autoawq(awq_packing):
    W, _ = _layer()
    ql = rtn(GridSpec(4, 64, False, style="awq"), W)
    got = _awq_dequantize(awq_packing, pack_awq(ql.q, ql.scales, ql.zeros), 64)
    np.testing.assert_array_equal(got, ql.dequantize())


# --- whole checkpoints written by `lowbit gptq/awq --format hf` -----------------------------------------

def _smollm2_checkpoint(tmp_path, method: str):
    from lowbit.calib.api import quantize_rtn
    from lowbit.calib.export import write_hf_dir
    from lowbit.io.gguf import open_gguf
    from lowbit.io.hf import unpermute_qk
    from lowbit.model.default import default_model_path
    from lowbit.model.llama import LlamaModel
    try:
        path = default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    out = str(tmp_path / method)
    with open_gguf(path) as f:
        model = LlamaModel.from_gguf(f)
        spec = GridSpec(4, 64, False, style="awq" if method == "awq" else "gptq")
        # the format does not depend on how the grid was found: round-to-nearest keeps the test fast
        res = quantize_rtn(model, f, spec)
        if method == "awq":
            res.info.update(method="awq", zero_point=True)
        write_hf_dir(res, out)
        cfg = model.cfg
        expected = {}
        for i in (0, cfg.n_layer - 1):
            for name, ql in res.quantized[i].items():
                w = ql.dequantize()
                if name in ("wq", "wk"):  # the checkpoint holds HF's row order
                    w = unpermute_qk(w, cfg.n_head, cfg.n_head if name == "wq" else cfg.n_head_kv)
                expected[(i, name)] = w
    return out, expected


def _load_safetensors(out_dir: str) -> dict:
    from safetensors.numpy import load_file
    st = {}
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".safetensors"):
            st.update(load_file(os.path.join(out_dir, name)))
    return st


HF = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj",
      "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}


@pytest.mark.slow
def test_smollm2_gptq_checkpoint_read_by_autogptq(autogptq, tmp_path):
    pytest.importorskip("safetensors")
    out, expected = _smollm2_checkpoint(tmp_path, "gptq")
    with open(os.path.join(out, "config.json"), encoding="utf-8") as fh:
        qc = json.load(fh)["quantization_config"]
    assert qc["quant_method"] == "gptq" and qc["bits"] == 4 and qc["group_size"] == 64
    st = _load_safetensors(out)
    for (i, name), w in expected.items():
        p = f"model.layers.{i}.{HF[name]}."
        got = _autogptq_dequantize(autogptq, {t: st[p + t] for t in ("qweight", "qzeros", "scales", "g_idx")}, 4, 64)
        np.testing.assert_array_equal(got, w, err_msg=p)


@pytest.mark.slow
def test_smollm2_awq_checkpoint_read_by_autoawq(awq_packing, tmp_path):
    pytest.importorskip("safetensors")
    out, expected = _smollm2_checkpoint(tmp_path, "awq")
    with open(os.path.join(out, "config.json"), encoding="utf-8") as fh:
        qc = json.load(fh)["quantization_config"]
    assert qc == {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True, "version": "gemm",
                  "modules_to_not_convert": None}
    st = _load_safetensors(out)
    for (i, name), w in expected.items():
        p = f"model.layers.{i}.{HF[name]}."
        got = _awq_dequantize(awq_packing, {t: st[p + t] for t in ("qweight", "qzeros", "scales")}, 64)
        np.testing.assert_array_equal(got, w, err_msg=p)


# --- their packing, our reading ------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_autogptq_packed_layer_read_by_lowbit(autogptq, bits):
    W, H = _layer(seed=2)
    ql = gptq(W, H, GridSpec(bits, 64, False))
    w = ql.dequantize()
    lin = autogptq.QuantLinear(bits, 64, W.shape[1], W.shape[0], bias=False)
    linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    linear.weight.data = torch.from_numpy(w)
    # their pack takes the float weights and the (n, G) parameters, as AutoGPTQ's quantizer hands them over
    lin.pack(linear, torch.from_numpy(ql.scales.copy()), torch.from_numpy(ql.zeros.copy()),
             torch.from_numpy(ql.g_idx.astype(np.int32)))
    q, zeros, scales, g_idx = unpack_gptq(lin.qweight.numpy(), lin.qzeros.numpy(), lin.scales.numpy(),
                                          lin.g_idx.numpy(), bits)
    np.testing.assert_array_equal(q, ql.q)
    np.testing.assert_array_equal(dequantize_grid(q, zeros, scales, g_idx), w)


def test_autoawq_packed_layer_read_by_lowbit(awq_gemm):
    W, _ = _layer(seed=3)
    ql = rtn(GridSpec(4, 64, False, style="awq"), W)
    w = ql.dequantize()
    linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    linear.weight.data = torch.from_numpy(w)
    # AutoAWQ's quantizer (_apply_quant) hands from_linear scales and zeros transposed, (G, n)
    lin = awq_gemm.WQLinear_GEMM.from_linear(linear, 4, 64, scales=torch.from_numpy(ql.scales.T.copy()),
                                             zeros=torch.from_numpy(ql.zeros.T.copy()))
    q, zeros, scales = unpack_awq(lin.qweight.numpy(), lin.qzeros.numpy(), lin.scales.numpy())
    np.testing.assert_array_equal(q, ql.q)
    g_idx = (np.arange(W.shape[1]) // 64).astype(np.int32)
    np.testing.assert_array_equal(dequantize_grid(q, zeros, scales, g_idx), w)
