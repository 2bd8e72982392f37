"""The quantization cases of tests/test_mixes.py and tests/make_mixes_golden.py: (model, mix, options).

Every mix runs on llama8 (synthetic, 8 layers, F32, untied output, GQA 4), llama32 (synthetic, 32
layers, F16 input, tied embeddings, GQA 2) and SmolLM2 made F32 (576-wide rows: every K-quant takes
its fallback); the overrides and imatrix cases run on llama8, requantizing on the shipped SmolLM2 Q4_1;
llama80 (80 layers with GQA) is what llama.cpp takes for LLaMA-2-70B (attn_v gets more bits).
`live` marks the cases also run against llama.cpp in the same test run (a subset, to keep CI short;
the golden digests cover the rest).
"""

from __future__ import annotations

ALL_MIXES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
             "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16", "F32"]

IMATRIX_FILE = "imatrix.gguf"  # relative: its name is written into the output's metadata


def _case(model, mix, live=False, **options):
    opt = "".join(f"-{k}={v}" for k, v in sorted(options.items()))
    return {"id": f"{model}-{mix}{opt}", "model": model, "mix": mix, "options": options, "live": live}


CASES = (
    [_case("llama8", m, live=True) for m in ALL_MIXES]
    + [_case("llama32", m, live=m in ("Q2_K", "Q3_K_M", "Q4_K_M")) for m in ALL_MIXES]
    + [_case("smollm2", m, live=m in ("Q4_K_M", "Q3_K_L", "Q8_0")) for m in ALL_MIXES]
    + [_case("smollm2_q4_1", m, live=True) for m in ("Q4_K_M", "Q8_0", "COPY")]
    + [_case("llama32", "COPY", live=True)]
    + [_case("llama80", m, live=m != "Q4_K_M") for m in ("Q3_K_S", "Q3_K_M", "Q4_K_M")]
    + [
        _case("llama8", "Q4_K_M", live=True, pure=True),
        _case("llama8", "Q4_K_M", live=True, output_tensor_type="q8_0", token_embedding_type="q4_k"),
        _case("llama32", "Q5_K_S", live=True, output_tensor_type="q5_k"),
        _case("llama8", "Q3_K_M", live=True, leave_output_tensor=True),
        _case("llama8", "Q6_K", live=True, pure=True, token_embedding_type="q8_0"),
    ]
    + [_case("llama8", m, live=True, imatrix=IMATRIX_FILE)
       for m in ("Q4_0", "Q5_0", "Q2_K_S", "Q3_K_M", "Q4_K_M", "IQ4_NL", "IQ4_XS")]
)
