"""Regenerate tests/golden/mixes.json from llama.cpp's quantizer (llama-cpp-python).

    PYTHONPATH=python:tests python tests/make_mixes_golden.py [CASE_ID_PREFIX ...]

With prefixes, only the matching cases are (re)made and merged into the existing file.

For every case of mix_cases.py: the sha256 of the file llama_model_quantize writes and its tensor
types in file order; plus the sha256 of the synthetic inputs (so a different numpy random stream is
noticed rather than reported as a mismatch).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import quant_models as qm  # noqa: E402
from lowbit.mixes import MIXES  # noqa: E402
from mix_cases import CASES, IMATRIX_FILE  # noqa: E402


def main(prefixes: list[str]) -> None:
    out = {"inputs": {}, "cases": {}}
    if prefixes:
        with open(os.path.join(HERE, "golden", "mixes.json")) as fh:
            out = json.load(fh)
    cases = [c for c in CASES if not prefixes or any(c["id"].startswith(p) for p in prefixes)]
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        models = {name: qm.make_synthetic(name, d) for name in qm.SYNTHETIC}
        out["inputs"].update({name: qm.sha256_file(p) for name, p in models.items()})
        qm.synthetic_imatrix(os.path.join(d, IMATRIX_FILE), models["llama8"])
        out["inputs"]["llama8_imatrix"] = qm.sha256_file(IMATRIX_FILE)
        models["smollm2"] = qm.smollm2_f32(os.path.join(d, "smollm2-f32.gguf"))
        from lowbit.model.default import default_model_path
        models["smollm2_q4_1"] = default_model_path()
        for case in cases:
            opts = dict(case["options"])
            dst = os.path.join(d, "out.gguf")
            qm.llama_quantize(models[case["model"]], dst, MIXES[case["mix"]].ftype, threads=2,
                              imatrix_path=opts.pop("imatrix", None), **opts)
            dig = qm.file_digest(dst)
            out["cases"][case["id"]] = {"sha256": dig["sha256"], "types": ",".join(dig["types"].values())}
            print(case["id"], dig["sha256"][:16], flush=True)
    with open(os.path.join(HERE, "golden", "mixes.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
