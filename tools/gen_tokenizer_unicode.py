"""Regenerate python/lowbit/model/_unicode_data.py from llama.cpp's own Unicode tables.

    python tools/gen_tokenizer_unicode.py /path/to/llama.cpp/src/unicode-data.cpp

llama.cpp's pre-tokenizers classify code points with the table in src/unicode-data.cpp (generated from
the Unicode version that was current when llama.cpp last ran scripts/gen-unicode-data.py), not with the
Unicode version of Python or of the regex engine. lowbit's pre-tokenizer regexes spell \\p{L}, \\p{N},
\\p{P}, \\p{M} and \\s as explicit classes built from these ranges, so a code point assigned in a newer
Unicode version splits the same way in lowbit as in llama.cpp.
"""

from __future__ import annotations

import os
import re
import sys

# unicode_cpt_flags in llama.cpp's src/unicode.h
FLAGS = {"L": 0x0004, "N": 0x0002, "M": 0x0010, "P": 0x0020}
MAX_CODEPOINTS = 0x110000

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "lowbit", "model",
                   "_unicode_data.py")


def parse(src: str) -> tuple[list[int], list[int]]:
    """(flags per code point, whitespace code points) from unicode-data.cpp's text."""
    body = src[src.index("unicode_ranges_flags"):]
    body = body[:body.index("};")]
    rows = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+), 0x([0-9A-Fa-f]+)\}", body)]
    if rows[0][0] != 0 or rows[-1][0] != MAX_CODEPOINTS:
        raise ValueError("unicode_ranges_flags does not span [0, 0x110000]")
    flags = [0] * MAX_CODEPOINTS
    for (start, f), (end, _) in zip(rows, rows[1:]):
        flags[start:end] = [f] * (end - start)
    ws = src[src.index("unicode_set_whitespace"):]
    ws = ws[:ws.index("};")]
    return flags, [int(x, 16) for x in re.findall(r"0x([0-9A-Fa-f]+)", ws)]


def ranges(flags: list[int], mask: int) -> list[tuple[int, int]]:
    out, start = [], None
    for cp in range(MAX_CODEPOINTS + 1):
        on = cp < MAX_CODEPOINTS and bool(flags[cp] & mask)
        if on and start is None:
            start = cp
        elif not on and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def encode(rs: list[tuple[int, int]]) -> str:
    return ",".join(f"{a:X}" if a == b else f"{a:X}-{b:X}" for a, b in rs)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        flags, ws = parse(f.read())
    lines = [
        '"""Code point classes of llama.cpp\'s pre-tokenizers (generated: do not edit).',
        "",
        "Made by tools/gen_tokenizer_unicode.py from llama.cpp's src/unicode-data.cpp: comma-separated",
        "hex ranges (inclusive) of the code points llama.cpp flags as letter (L), number (N), accent mark",
        '(M) and punctuation (P), and the code points it treats as whitespace (\\\\s)."""',
        "",
    ]
    for name, mask in FLAGS.items():
        lines.append(f'{name} = "{encode(ranges(flags, mask))}"')
    lines.append(f'WHITESPACE = "{encode([(c, c) for c in sorted(ws)])}"')
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.normpath(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
