"""The type table: complete, self-consistent, and equal to the gguf package's and ggml's facts."""

import gguf
import numpy as np
import pytest

import ggml_oracle
import lowbit

EXPECTED = {
    "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1",
    "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k", "iq4_nl", "iq4_xs",
}


def test_table_lists_every_type_once():
    names = [t["name"] for t in lowbit.types()]
    assert sorted(names) == sorted(EXPECTED)


@pytest.mark.parametrize("row", lowbit.types(), ids=lambda r: r["name"])
def test_table_matches_gguf_constants(row):
    qt = gguf.GGMLQuantizationType(row["gguf_id"])
    assert qt.name.lower() == row["name"]
    block, size = gguf.GGML_QUANT_SIZES[qt]
    assert row["block_size"] == block
    if row["name"] == "q8_1":
        # gguf-py still lists q8_1 as 40 bytes (old f32 d and s); ggml's block_q8_1 has been two
        # halves + 32 int8 = 36 bytes for years. ggml is the truth: checked in the oracle test.
        assert size == 40 and row["type_size"] == 36
    else:
        assert row["type_size"] == size
    assert row["bits_per_weight"] == pytest.approx(8.0 * row["type_size"] / row["block_size"])


@pytest.mark.oracle
@pytest.mark.parametrize("row", lowbit.types(), ids=lambda r: r["name"])
def test_table_matches_ggml(row):
    tr = ggml_oracle.traits(row["gguf_id"])
    assert tr.blck_size == row["block_size"]
    assert tr.type_size == row["type_size"]
    assert tr.type_name.decode().lower() == row["name"]


def test_dot_types_are_activation_types():
    table = {t["name"]: t for t in lowbit.types()}
    for t in table.values():
        assert t["dot_type"] in table
        if t["is_quantized"]:
            assert table[t["dot_type"]]["block_size"] in (32, 256)


def test_type_info_case_insensitive():
    assert lowbit.type_info("Q4_K")["name"] == "q4_k"
    with pytest.raises(ValueError, match="unknown quantization type"):
        lowbit.type_info("q4_z")


def test_quantized_tensor_properties():
    x = np.zeros((3, 512), np.float32)
    qt = lowbit.quantize(x, "q4_0")
    assert qt.qtype == "q4_0" and qt.shape == (3, 512)
    assert qt.nbytes == 3 * 16 * 18 == qt.data.size
    assert qt.data.dtype == np.uint8 and qt.data.ndim == 1
    assert qt.bits_per_weight == 4.5
