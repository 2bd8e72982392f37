#!/usr/bin/env bash
# Build _core and _cuda in place for development: both modules land in python/lowbit/.
# Usage: LOWBIT_CUDA_ARCHS=90 tools/dev-build-cuda.sh [build-dir]   (one arch compiles ~5x faster)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev-cuda}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA=ON \
  -DLOWBIT_CUDA_ARCHS="${LOWBIT_CUDA_ARCHS:-80-real;86-real;89-real;90-real;90-virtual}" \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$build" -j "${LOWBIT_BUILD_JOBS:-2}"
# copy then rename: a new inode, so a Python process that has the old module mapped keeps working
for so in "$build"/_core*.so "$build"/_cuda*.so; do
  cp "$so" "python/lowbit/.$(basename "$so").tmp" && mv -f "python/lowbit/.$(basename "$so").tmp" "python/lowbit/$(basename "$so")"
done
