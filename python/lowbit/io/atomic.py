"""Outputs appear whole or not at all: written under a fresh temporary name in the target's directory
(so the final rename is atomic), synced, then renamed into place; any error or interrupt removes the
temporary file and leaves a previous file at the target untouched."""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO, Iterator


def atomic_temp_path(path: str) -> str:
    """A fresh temporary name next to path (same directory, so the final rename is atomic). os.urandom,
    not the secrets module: that one imports hashlib and with it OpenSSL's libcrypto, 4 MB of resident
    memory in every process that opens a model."""
    return os.path.join(os.path.dirname(os.path.abspath(path)),
                        f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


@contextlib.contextmanager
def atomic_write(path) -> Iterator[BinaryIO]:
    """with atomic_write(path) as f: f.write(...)  -- path gets the bytes only if the block finishes."""
    path = os.fspath(path)
    tmp = atomic_temp_path(path)
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
