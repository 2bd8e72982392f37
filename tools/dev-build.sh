#!/usr/bin/env bash
# Build _core in place for development (no pip, no global install): the module lands in
# python/lowbit/, so `PYTHONPATH=python pytest` uses it. Usage: tools/dev-build.sh [build-dir]
# CPU only unless LOWBIT_CUDA is set (tools/dev-build-cuda.sh builds _cuda): nvcc takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA="${LOWBIT_CUDA:-OFF}" \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$build" -j 2
# copy then rename: a new inode, so a running Python process that has the old module mapped keeps
# working (an in-place cp rewrote its pages under it and killed a background calibration run)
for so in "$build"/_core*.so; do
  cp "$so" "python/lowbit/.$(basename "$so").tmp" && mv -f "python/lowbit/.$(basename "$so").tmp" "python/lowbit/$(basename "$so")"
done
