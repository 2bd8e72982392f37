"""The quality bar in CI: on SmolLM2 (the dequantized shipped Q4_1 model as the float reference), GPTQ and
AWQ at 3 bits, groups of 64 (576-wide rows take no group of 128; 32 would line up with Q4_1's own grid)
have a lower WikiText perplexity than round-to-nearest in the same format. Reduced setting: 16 C4
windows of 256 tokens, 2 chunks of 512. The README's table comes from the full setting."""

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


@pytest.mark.slow
def test_gptq_and_awq_beat_rtn_on_smollm2():
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
        tokens = calibration_windows(tok, SAMPLES, SEQ_LEN)

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
