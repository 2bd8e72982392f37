"""GPTQ / AWQ calibration: the algorithms on layers with known Hessians, the packed GPTQ / AWQ layouts
against hand-built words and AutoGPTQ's documented pack loop, GGUF blocks that hold calibrated grids
exactly, and exports of the real model."""

import dataclasses
import json
import os

import numpy as np
import pytest

import lowbit
from lowbit.calib.export import exact_gguf_type, grid_to_gguf
from lowbit.calib.gptq import gptq, gptq_into_gguf, hessian_error
from lowbit.calib.grid import GridSpec, rtn
from lowbit.io.gptq_awq import (AWQ_ORDER, pack_awq, pack_bits, pack_gptq, unpack_awq, unpack_bits,
                                unpack_gptq, dequantize_grid)


def _layer(n, k, seed=0):
    """A layer and a correlated, anisotropic Hessian 2/N X^T X like real activations give."""
    rng = np.random.default_rng(seed)
    W = (rng.standard_t(5, (n, k)) * 0.05).astype(np.float32)
    X = rng.standard_normal((4 * k, k)) * np.exp(rng.standard_normal(k))
    X = X @ (np.eye(k) + 0.3 * rng.standard_normal((k, k)) / np.sqrt(k))
    return W, 2.0 / len(X) * X.T @ X


# packing -------------------------------------------------------------------------------------------

def _autogptq_pack_3bit(intweight):
    """AutoGPTQ's QuantLinear.pack loop for 3 bits (rows of intweight: input columns), as documented."""
    intweight = intweight.astype(np.uint32)
    qweight = np.zeros((intweight.shape[0] // 32 * 3, intweight.shape[1]), np.uint32)
    i = row = 0
    while row < qweight.shape[0]:
        for j in range(i, i + 10):
            qweight[row] |= intweight[j] << (3 * (j - i))
        i += 10
        qweight[row] |= intweight[i] << 30
        row += 1
        qweight[row] |= (intweight[i] >> 2) & 1
        i += 1
        for j in range(i, i + 10):
            qweight[row] |= intweight[j] << (3 * (j - i) + 1)
        i += 10
        qweight[row] |= intweight[i] << 31
        row += 1
        qweight[row] |= (intweight[i] >> 1) & 0x3
        i += 1
        for j in range(i, i + 10):
            qweight[row] |= intweight[j] << (3 * (j - i) + 2)
        i += 10
        row += 1
    return qweight.view(np.int32)


def _autogptq_pack_pow2(intweight, bits):
    """AutoGPTQ's loop for 2/4/8 bits: value j of each run of 32/bits at bits * j."""
    per = 32 // bits
    intweight = intweight.astype(np.uint32)
    qweight = np.zeros((intweight.shape[0] // per, intweight.shape[1]), np.uint32)
    for row in range(qweight.shape[0]):
        for j in range(per):
            qweight[row] |= intweight[row * per + j] << (bits * j)
    return qweight.view(np.int32)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_pack_bits_round_trip_and_autogptq_layout(bits):
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 1 << bits, (48, 96)).astype(np.uint8)     # (n, k)
    words = pack_bits(q, bits)
    assert words.shape == (48, 96 * bits // 32) and words.dtype == np.int32
    assert np.array_equal(unpack_bits(words, bits), q)
    ref = _autogptq_pack_3bit(q.T) if bits == 3 else _autogptq_pack_pow2(q.T, bits)
    assert np.array_equal(pack_bits(q, bits).T, ref)


def test_gptq_v1_zero_convention_hand_built():
    # 4-bit symmetric: zero 8 is stored as 7 in every nibble; the loader adds 1 back
    n, k = 8, 64
    q = np.tile(np.arange(16, dtype=np.uint8), (n, k // 16))
    scales = np.full((n, 2), 0.5, np.float32)
    zeros = np.full((n, 2), 8.0, np.float32)
    g_idx = np.arange(k) // 32
    p = pack_gptq(q, scales, zeros, g_idx, 4)
    assert p["qweight"].shape == (k // 8, n) and p["qzeros"].shape == (2, n // 8) and p["scales"].shape == (2, n)
    assert np.all(p["qzeros"].view(np.uint32) == 0x77777777)
    assert np.all(p["qweight"][0].view(np.uint32) == 0x76543210)   # q[:, 0..7] = 0..7 at nibbles 0..7
    q2, z2, s2, g2 = unpack_gptq(p["qweight"], p["qzeros"], p["scales"], p["g_idx"], 4)
    assert np.array_equal(q2, q) and np.array_equal(z2, zeros) and np.array_equal(s2, scales)
    w = dequantize_grid(q2, z2, s2, g2)
    assert w[0, 0] == -4.0 and w[0, 15] == 3.5
    with pytest.raises(ValueError, match="zero points"):
        pack_gptq(q, scales, np.zeros_like(zeros), g_idx, 4)   # zero 0 cannot be stored in v1


def test_awq_gemm_order_hand_built():
    n, k = 16, 32
    q = np.tile(np.arange(8, dtype=np.uint8)[None, :], (k, n // 8)).T.copy()  # output o holds o % 8
    zeros = np.tile(np.arange(8, dtype=np.float32), n // 8)[:, None]
    p = pack_awq(q, np.ones((n, 1), np.float32), zeros)
    assert p["qweight"].shape == (k, n // 8) and p["qzeros"].shape == (1, n // 8)
    # nibble j holds output ORDER[j] = 0, 2, 4, 6, 1, 3, 5, 7
    assert np.all(p["qweight"].view(np.uint32) == 0x75316420)
    assert np.all(p["qzeros"].view(np.uint32) == 0x75316420)
    assert AWQ_ORDER == (0, 2, 4, 6, 1, 3, 5, 7)
    rng = np.random.default_rng(1)
    q = rng.integers(0, 16, (24, 64)).astype(np.uint8)
    z = rng.integers(0, 16, (24, 2)).astype(np.float32)
    s = rng.random((24, 2)).astype(np.float32)
    q2, z2, s2 = unpack_awq(**pack_awq(q, s, z))
    assert np.array_equal(q2, q) and np.array_equal(z2, z) and np.allclose(s2, s.astype(np.float16))


# GPTQ ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,group,sym,act_order", [
    (4, 128, True, False), (4, 128, False, True), (3, 64, False, False), (2, 32, False, True),
    (4, -1, True, False), (8, 32, True, False)])
def test_gptq_reduces_hessian_weighted_error(bits, group, sym, act_order):
    W, H = _layer(96, 256)
    spec = GridSpec(bits, group, sym)
    e_rtn = hessian_error(W, rtn(spec, W).dequantize(), H)
    g = gptq(W, H, spec, act_order=act_order)
    e_gptq = hessian_error(W, g.dequantize(), H)
    assert e_gptq < 0.7 * e_rtn
    assert g.q.max() <= spec.maxq and np.all(np.diff(g.g_idx) >= 0)  # static groups keep g_idx monotonic
    assert g.scales.dtype == np.float32 and np.array_equal(g.scales, g.scales.astype(np.float16).astype(np.float32))


def test_gptq_act_order_dynamic_groups_permute_g_idx():
    W, H = _layer(64, 256, seed=3)
    spec = GridSpec(4, 32, False)
    g = gptq(W, H, spec, act_order=True, static_groups=False)
    assert not np.all(np.diff(g.g_idx) >= 0)
    assert np.array_equal(np.bincount(g.g_idx), np.full(8, 32))
    assert hessian_error(W, g.dequantize(), H) < hessian_error(W, rtn(spec, W).dequantize(), H)


def test_gptq_bad_input():
    W, H = _layer(16, 64)
    with pytest.raises(ValueError, match="does not divide"):
        gptq(W, H, GridSpec(4, 48, True))
    with pytest.raises(ValueError, match="bits"):
        gptq(W, H, GridSpec(6, 32, True))
    Hn = H.copy()
    Hn[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gptq(W, Hn, GridSpec(4, 32, True))


def test_gptq_dead_columns_and_singular_hessian():
    W, H = _layer(16, 64)
    H[:, 5] = H[5, :] = 0          # an input that is always zero
    g = gptq(W, H, GridSpec(4, 32, True))
    assert np.all(g.dequantize()[:, 5] == 0)
    X = np.ones((10, 64))           # rank 1: needs the dampening
    g = gptq(W, X.T @ X, GridSpec(4, 32, True))
    assert np.all(np.isfinite(g.dequantize()))


@pytest.mark.parametrize("qtype", ["q4_0", "q4_k", "q3_k", "iq4_nl", "q6_k"])
def test_gptq_into_gguf_beats_imatrix(qtype):
    W, H = _layer(64, 512, seed=7)
    plain = lowbit.quantize(W, qtype).dequantize()
    im = lowbit.quantize(W, qtype, imatrix=(np.diag(H) / 2).astype(np.float32)).dequantize()
    qt = gptq_into_gguf(W, H, qtype)
    assert qt.qtype == qtype and qt.shape == W.shape
    e_plain, e_im, e_gptq = (hessian_error(W, x, H) for x in (plain, im, qt.dequantize()))
    assert e_im < e_plain and e_gptq < 0.9 * e_im


# GGUF blocks holding calibrated grids exactly ----------------------------------------------------------

@pytest.mark.parametrize("spec,qtype", [(GridSpec(4, 32, True), "q4_0"), (GridSpec(8, 32, True), "q8_0"),
                                        (GridSpec(4, 32, False, "min"), "q4_1"),
                                        (GridSpec(4, 32, True, "awq"), "q4_0")])
def test_grid_is_gguf_exact(spec, qtype):
    W, H = _layer(40, 128, seed=11)
    W[3] = 0.0                      # an all-zero row
    W[4] *= 1e-3
    assert exact_gguf_type(spec) == qtype
    for ql in (rtn(spec, W), gptq(W, H, spec, act_order=True)):
        qt = grid_to_gguf(ql)
        assert qt.qtype == qtype
        assert np.array_equal(lowbit.dequantize(qt), ql.dequantize())   # ggml's values == the grid's
    assert exact_gguf_type(GridSpec(4, 64, True)) is None and exact_gguf_type(GridSpec(4, 32, False)) is None


# the real model --------------------------------------------------------------------------------------

def _smollm2():
    from lowbit.io.gguf import open_gguf
    from lowbit.model.default import default_model_path
    from lowbit.model.llama import LlamaModel
    from lowbit.model.tokenizer import Tokenizer
    try:
        path = default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    f = open_gguf(path)
    return f, LlamaModel.from_gguf(f), Tokenizer.from_gguf_metadata(f.metadata)


def _first_layers(model, n):
    from lowbit.model.llama import LlamaModel
    return LlamaModel(dataclasses.replace(model.cfg, n_layer=n), dataclasses.replace(model.w, layers=model.w.layers[:n]))


@pytest.fixture(scope="module")
def smollm2():
    f, model, tok = _smollm2()
    yield f, model, tok
    f.close()


@pytest.mark.slow
def test_calibration_windows(smollm2):
    from lowbit.calib.data import calibration_windows
    f, model, tok = smollm2
    a = calibration_windows(tok, 6, 128, seed=1)
    assert a.shape == (6, 128) and a.dtype == np.int64
    assert np.array_equal(a, calibration_windows(tok, 6, 128, seed=1))
    assert not np.array_equal(a, calibration_windows(tok, 6, 128, seed=2))
    with pytest.raises(ValueError, match="fewer than"):
        calibration_windows(tok, 10**6, 512)


@pytest.mark.slow
def test_gptq_hf_export_round_trip(smollm2, tmp_path):
    """Two calibrated blocks written as a GPTQ checkpoint: unpacking gives back the grid, Q/K rows in HF order."""
    from lowbit.calib.api import quantize_gptq
    from lowbit.calib.data import calibration_windows
    from lowbit.calib.export import write_hf_dir
    from lowbit.io.hf import unpermute_qk
    from lowbit.io.safetensors import open_safetensors
    f, model, tok = smollm2
    small = _first_layers(model, 2)
    res = quantize_gptq(small, f, calibration_windows(tok, 4, 64), GridSpec(4, 64, False), act_order=True)
    files = write_hf_dir(res, tmp_path / "out")
    assert {"config.json", "quantize_config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    cfg = json.load(open(tmp_path / "out" / "config.json"))
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "gptq" and qc["bits"] == 4 and qc["group_size"] == 64 and qc["desc_act"] and not qc["sym"]
    with open_safetensors(tmp_path / "out" / "model.safetensors") as st:
        for name, hf, heads in (("wq", "self_attn.q_proj", (9, 9)), ("wk", "self_attn.k_proj", (9, 3)),
                                ("w_down", "mlp.down_proj", None)):
            p = f"model.layers.1.{hf}."
            q, z, s, g = unpack_gptq(st.raw(p + "qweight"), st.raw(p + "qzeros"), st.raw(p + "scales"),
                                     st.raw(p + "g_idx"), 4)
            w = dequantize_grid(q, z, s, g)
            want = res.quantized[1][name].dequantize()
            if heads:
                want = unpermute_qk(want, *heads)
            assert np.array_equal(w, want)
        assert st.tensors["model.layers.0.input_layernorm.weight"].dtype == "F16"


@pytest.mark.slow
def test_awq_hf_and_gguf_exports(smollm2, tmp_path):
    from lowbit.calib.awq import quantize_awq
    from lowbit.calib.data import calibration_windows
    from lowbit.calib.export import write_gguf_dir, write_hf_dir
    from lowbit.io.gguf import open_gguf
    from lowbit.io.safetensors import open_safetensors
    f, model, tok = smollm2
    small = _first_layers(model, 1)
    tokens = calibration_windows(tok, 2, 64)
    res = quantize_awq(small, f, tokens, 4, 64)
    write_hf_dir(res, tmp_path / "hf")
    cfg = json.load(open(tmp_path / "hf" / "config.json"))
    assert cfg["quantization_config"] == {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True,
                                          "version": "gemm", "modules_to_not_convert": None}
    with open_safetensors(tmp_path / "hf" / "model.safetensors") as st:
        p = "model.layers.0.mlp.up_proj."
        q, z, s = unpack_awq(st.raw(p + "qweight"), st.raw(p + "qzeros"), st.raw(p + "scales"))
        assert np.array_equal(dequantize_grid(q, z, s, np.arange(576) // 64), res.layers[0].w_up)
        norm = st.array("model.layers.0.post_attention_layernorm.weight")
        assert np.array_equal(norm, res.layers[0].ffn_norm.astype(np.float16).astype(np.float32))
    # AWQ into GGUF: zero-point-free groups of 32 are Q4_0, byte for byte
    res = quantize_awq(small, f, tokens, 4, 32, zero_point=False)
    path = write_gguf_dir(res, tmp_path / "gguf")
    with open_gguf(path) as g:
        t = g.tensor("blk.0.ffn_up.weight")
        assert t.qtype == "q4_0" and np.array_equal(t.dequantize(), res.layers[0].w_up)
        assert np.array_equal(g.array("blk.0.ffn_norm.weight"), res.layers[0].ffn_norm)
        assert g.tensor("blk.1.ffn_up.weight").qtype == "q4_1"   # untouched layers keep the source's tensors
        assert g.metadata["general.file_type"] == 2


@pytest.mark.slow
def test_gptq_gguf_export_loads_in_the_runtime(smollm2, tmp_path):
    from lowbit.calib.api import quantize_gguf_calibrated, quantize_gptq
    from lowbit.calib.data import calibration_windows
    from lowbit.calib.export import write_gguf_dir
    from lowbit.io.gguf import open_gguf
    from lowbit.model.llama import LlamaModel
    f, model, tok = smollm2
    small = _first_layers(model, 1)
    tokens = calibration_windows(tok, 2, 64)
    res = quantize_gptq(small, f, tokens, GridSpec(4, 32, False, "min"))
    with open_gguf(write_gguf_dir(res, tmp_path / "a")) as g:
        t = g.tensor("blk.0.attn_q.weight")
        assert t.qtype == "q4_1" and np.array_equal(t.dequantize(), res.layers[0].wq)
        LlamaModel.from_gguf(g).forward([1, 2, 3], 0, LlamaModel.from_gguf(g).new_cache(8))
    res = quantize_gguf_calibrated(small, f, tokens, "iq4_nl")
    with open_gguf(write_gguf_dir(res, tmp_path / "b")) as g:
        assert g.tensor("blk.0.ffn_down.weight").qtype == "iq4_nl"
        assert np.array_equal(g.tensor("blk.0.ffn_down.weight").data, res.quantized[0]["w_down"].data)
    with pytest.raises(FileExistsError):
        write_gguf_dir(res, tmp_path / "b")


@pytest.mark.oracle
@pytest.mark.parametrize("spec", [GridSpec(4, 32, True), GridSpec(8, 32, True), GridSpec(4, 32, False, "min")])
def test_gguf_grid_bytes_dequantize_in_ggml(spec):
    """ggml's own to_float on the bytes we build gives exactly the calibrated grid's values."""
    import ggml_oracle
    W, H = _layer(8, 128, seed=5)
    ql = gptq(W, H, spec)
    qt = grid_to_gguf(ql)
    gguf_id = lowbit.ops.type_info(qt.qtype)["gguf_id"]
    got = ggml_oracle.dequantize(gguf_id, qt.data.reshape(W.shape[0], -1), W.shape[1])
    assert np.array_equal(got, ql.dequantize())


@pytest.mark.slow
def test_cli_gptq_rtn_and_errors(smollm2, tmp_path, capsys):
    from lowbit.cli import main
    f, model, tok = smollm2
    out = tmp_path / "rtn"
    assert main(["gptq", f.path, str(out), "--rtn", "--group-size", "64", "--bits", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["method"] == "rtn" and res["bits"] == 3 and "model.safetensors" in res["files"]
    cfg = json.load(open(out / "config.json"))
    assert cfg["quantization_config"]["bits"] == 3 and cfg["quantization_config"]["group_size"] == 64
    # bad settings: one clear line, exit 1, no output directory left behind
    for args, msg in ((["--group-size", "128"], "does not divide"),
                      (["--format", "gguf", "--group-size", "64"], "no GGUF type"),
                      (["--samples", "100000", "--seq-len", "512", "--group-size", "64"], "fewer than")):
        assert main(["gptq", f.path, str(tmp_path / "bad")] + args) == 1
        assert msg in capsys.readouterr().err
        assert not os.path.exists(tmp_path / "bad")
    assert main(["gptq", f.path, str(out), "--rtn", "--group-size", "64"]) == 1
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["awq", f.path, str(tmp_path / "bad"), "--group-size", "64", "--format", "gguf"]) == 1
    assert "no GGUF type" in capsys.readouterr().err


@pytest.mark.slow
def test_awq_input_statistics_cover_all_tokens(smollm2, monkeypatch):
    """AutoAWQ's x_mean is over every calibration token and its clip search takes every
    (N // n_sample_token)-th token; collected batch by batch they equal the statistics of all inputs at once."""
    from lowbit.calib import awq
    from lowbit.calib.block import FloatLayer, block_forward
    from lowbit.calib.sequential import embed_samples
    from lowbit.model.llama import rope_angles
    _, model, _ = smollm2
    cfg = model.cfg
    X = embed_samples(model, np.random.default_rng(0).integers(0, 1000, (11, 24)))  # 11 > SAMPLE_BATCH
    cos, sin = rope_angles(cfg, np.arange(24), model.w.rope_freqs)
    lw = FloatLayer.from_layer(model.w.layers[0])
    A = {}
    block_forward(cfg, lw, X, cos, sin, lambda name, a: A.__setitem__(name, a.reshape(-1, a.shape[-1])))
    monkeypatch.setattr(awq, "CLIP_TOKENS", 10)   # 264 tokens: every 26th
    x_mean, clip_x = awq.input_statistics(cfg, lw, X, cos, sin)
    for name, a in A.items():
        np.testing.assert_allclose(x_mean[name], np.abs(a).mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(clip_x[name], a[::26], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sequential_float_inputs(smollm2):
    """float_inputs: block i sees the float blocks' outputs (AWQ's reference code), not the quantized ones."""
    from lowbit.calib.block import FloatLayer
    from lowbit.calib.grid import rtn
    from lowbit.calib.sequential import calibrate_sequential, embed_samples, run_blocks
    from lowbit.model.llama import rope_angles
    f, model, _ = smollm2
    small = _first_layers(model, 2)
    tokens = np.random.default_rng(1).integers(0, 1000, (2, 16))
    cos, sin = rope_angles(model.cfg, np.arange(16), model.w.rope_freqs)
    X0 = embed_samples(small, tokens)
    float0 = FloatLayer.from_layer(small.w.layers[0])
    spec = GridSpec(2, 64, False)

    for float_inputs in (True, False):
        seen = []

        def block(i, lw, X, cos_, sin_, seen=seen):
            seen.append(X)
            out = lw.copy()
            qs = {n: rtn(spec, getattr(lw, n)) for n in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")}
            for n, q in qs.items():
                setattr(out, n, q.dequantize())
            return qs, out

        res = calibrate_sequential(small, f, tokens, block, float_inputs=float_inputs)
        layer0 = float0 if float_inputs else res.layers[0]
        np.testing.assert_allclose(seen[1], run_blocks(model.cfg, layer0, X0, cos, sin), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_gguf_calibrated_type_per_tensor(smollm2):
    from lowbit.calib.api import quantize_gguf_calibrated
    from lowbit.calib.block import GGUF_NAME
    from lowbit.calib.data import calibration_windows
    f, model, tok = smollm2
    small = _first_layers(model, 1)
    tokens = calibration_windows(tok, 2, 64)
    types = {f"blk.0.{g}.weight": "q5_0" for g in GGUF_NAME.values()}
    types["blk.0.ffn_down.weight"] = "q6_k"
    res = quantize_gguf_calibrated(small, f, tokens, types)
    assert {n: q.qtype for n, q in res.quantized[0].items()} == {
        n: ("q6_k" if n == "w_down" else "q5_0") for n in GGUF_NAME}
    del types["blk.0.attn_k.weight"]
    with pytest.raises(ValueError, match="no type given for blk.0.attn_k.weight"):
        quantize_gguf_calibrated(small, f, tokens, types)
