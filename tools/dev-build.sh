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
cp "$build"/_core*.so python/lowbit/
