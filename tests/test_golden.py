"""lowbit against golden hashes of ggml's own output (tests/make_golden.py): bit-exactness checked
on every run, with or without the oracle installed, on every ISA this CPU supports."""

import hashlib
import json
import os

import platform

import numpy as np
import pytest

import lowbit
from make_golden import cases

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "golden", "ggml.json")) as _f:
    GOLDEN = json.load(_f)["cases"]
ARRAYS = dict(np.load(os.path.join(HERE, "golden", "inputs.npz")))
ISAS = lowbit.cpu_info()["supported"]
CASES = list(cases(lowbit.types()))


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_every_case_has_a_golden_entry():
    assert {c[0] for c in CASES} == set(GOLDEN)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case,row,name,im", CASES, ids=[c[0] for c in CASES])
def test_bytes_and_floats_equal_ggml(isa, case, row, name, im):
    if name.startswith("huge") and platform.machine() not in ("x86_64", "AMD64"):
        # values near FLT_MAX overflow a block's scale to inf, and ggml's reference then converts inf or
        # NaN to an integer: x86 gives INT_MIN, AArch64 saturates, so ggml's own bytes differ between
        # the two. The golden bytes were made on x86.
        pytest.skip("ggml's bytes for overflowing scales depend on the CPU's float-to-int conversion")
    x = ARRAYS[name]
    qt = lowbit.quantize(x, row["name"], None if im is None else ARRAYS[im], isa=isa)
    assert sha(qt.data) == GOLDEN[case]["bytes"], f"{case}: quantized bytes differ from ggml's ({isa})"
    if "floats" in GOLDEN[case]:
        y = lowbit.dequantize(qt, isa=isa)
        # 0 * inf (a block whose f16 scale overflowed) is the CPU's default NaN: x86's has the sign bit
        # set, AArch64's does not. The golden floats were made on x86.
        y.view(np.uint32)[np.isnan(y)] = 0xFFC00000
        assert sha(y) == GOLDEN[case]["floats"], f"{case}: dequantized floats differ from ggml's ({isa})"
