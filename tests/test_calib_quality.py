"""The quality bar in CI: on SmolLM2 (the dequantized shipped Q4_1 model as the float reference), GPTQ and
AWQ at 3 bits, groups of 64 (576-wide rows take no group of 128; 32 would line up with Q4_1's own grid)
have a lower WikiText perplexity than round-to-nearest in the same format. Reduced setting: 16 C4
windows of 256 tokens, 2 chunks of 512. The README's table comes from the full setting."""

import contextlib
import time

import numpy as np
import pytest

from lowbit.calib.api import quantize_gptq, quantize_rtn
from lowbit.calib.awq import quantize_awq
from lowbit.calib.data import calibration_windows
from lowbit.calib.grid import GridSpec
from lowbit.model.default import default_model_path, default_text_path
from lowbit.model.runtime import perplexity

BITS, GROUP, SAMPLES, SEQ_LEN, CHUNKS = 3, 64, 16, 256, 2


@contextlib.contextmanager
def smollm2_setting(samples: int, seq_len: int):
    """(open GGUF file, model, WikiText token ids, C4 calibration windows) for the shipped SmolLM2; skips
    the test when the model is not installed."""
    from lowbit.io.gguf import open_gguf
    from lowbit.model.llama import LlamaModel
    from lowbit.model.tokenizer import Tokenizer
    try:
        path = default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with open_gguf(path) as f:
        model, tok = LlamaModel.from_gguf(f), Tokenizer.from_gguf_metadata(f.metadata)
        with open(default_text_path(), encoding="utf-8") as fh:
            ids = tok.encode(fh.read(), add_bos=None, parse_special=False)
        yield f, model, ids, calibration_windows(tok, samples, seq_len)


@pytest.mark.slow
def test_gptq_and_awq_beat_rtn_on_smollm2():
    with smollm2_setting(SAMPLES, SEQ_LEN) as (f, model, ids, tokens):
        def ppl(res):
            return perplexity(res.to_llama_model(), ids, n_ctx=512, n_chunks=CHUNKS).ppl

        spec = GridSpec(BITS, GROUP, sym=False)
        t0 = time.perf_counter()
        p_rtn = ppl(quantize_rtn(model, f, spec))
        p_gptq = ppl(quantize_gptq(model, f, tokens, spec, act_order=True))
        p_awq = ppl(quantize_awq(model, f, tokens, BITS, GROUP, zero_point=True, search_samples=4))
        print(f"\nw{BITS} g{GROUP}, {SAMPLES} x {SEQ_LEN} tokens, {CHUNKS} chunks: RTN {p_rtn:.3f}, "
              f"GPTQ {p_gptq:.3f}, AWQ {p_awq:.3f} ({time.perf_counter() - t0:.0f} s)")
    assert np.isfinite([p_rtn, p_gptq, p_awq]).all()
    assert p_gptq < 0.95 * p_rtn
    assert p_awq < 0.95 * p_rtn


# The w4 bar: the perplexity increase over the float reference of GPTQ (act-order) and of AWQ at
# most 0.7x round-to-nearest's. At 16 x 256 tokens and 2 chunks GPTQ lands at 0.70x (too close to call),
# so this runs at the README's setting: 32 C4 windows of 256 tokens (AWQ's scale search scoring 4 of
# them), 4 chunks of 512. Measured (1 thread): reference 22.745, RTN 29.641, GPTQ 26.622 (0.56x),
# AWQ 27.312 (0.66x).
W4_SAMPLES, W4_SEQ_LEN, W4_CHUNKS, W4_SEARCH = 32, 256, 4, 4


@pytest.mark.slow
def test_w4_gptq_and_awq_within_0_7x_of_rtn_increase():
    from lowbit.calib.sequential import fake_quant_model
    with smollm2_setting(W4_SAMPLES, W4_SEQ_LEN) as (f, model, ids, tokens):
        def ppl(m):
            return perplexity(m, ids, n_ctx=512, n_chunks=W4_CHUNKS).ppl

        spec = GridSpec(4, GROUP, sym=False)
        t0 = time.perf_counter()
        p_ref = ppl(fake_quant_model(model, None))
        p_rtn = ppl(quantize_rtn(model, f, spec).to_llama_model())
        p_gptq = ppl(quantize_gptq(model, f, tokens, spec, act_order=True).to_llama_model())
        p_awq = ppl(quantize_awq(model, f, tokens, 4, GROUP, zero_point=True, search_samples=W4_SEARCH).to_llama_model())
        rtn_inc = p_rtn - p_ref
        print(f"\nw4 g{GROUP}, {W4_SAMPLES} x {W4_SEQ_LEN} tokens, {W4_CHUNKS} chunks: reference {p_ref:.3f}, "
              f"RTN {p_rtn:.3f}, GPTQ {p_gptq:.3f} ({(p_gptq - p_ref) / rtn_inc:.2f}x), AWQ {p_awq:.3f} "
              f"({(p_awq - p_ref) / rtn_inc:.2f}x) ({time.perf_counter() - t0:.0f} s)")
    assert rtn_inc > 1.0
    assert p_gptq - p_ref <= 0.7 * rtn_inc
    assert p_awq - p_ref <= 0.7 * rtn_inc
