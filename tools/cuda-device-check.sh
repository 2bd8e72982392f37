#!/usr/bin/env bash
# Build, test, memcheck and benchmark lowbit's CUDA backend on a GPU machine in one go.
#
#   OUT=/some/dir tools/cuda-device-check.sh        (from the repo root; OUT defaults to ./cuda-check-out)
#
# Writes $OUT/results.json (one entry per step: rc, seconds, summary; the benchmark's JSON inlined) and
# one log per step. Never stops at a failed step; the whole run stays under ~6 minutes: every step has
# a timeout and they share one deadline (LOWBIT_CHECK_BUDGET_S, default 330 s).
#
# Needs: nvcc (PATH or /usr/local/cuda*/bin), cmake, ninja, pybind11, numpy, pytest; torch / cupy for
# the DLPack tests and the cuBLAS baseline; compute-sanitizer for the memcheck step (skipped if absent).
# No network. The CUDA tests need no gguf; if tests elsewhere want it offline, prepare a wheel first
# on a machine with network, in the repo root:
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps "gguf==$(python3 -c 'import gguf, importlib.metadata as m; print(m.version("gguf"))')" -d .whl
# and this script installs .whl/*.whl into /tmp/lowbit-site (PYTHONPATH) without touching the system.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/cuda-check-out}
mkdir -p "$OUT"
START=$(date +%s)
BUDGET=${LOWBIT_CHECK_BUDGET_S:-330}
STEPS="$OUT/steps.jsonl"
: > "$STEPS"

log() { echo "[cuda-device-check $(date +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" >&2; }

# run_step NAME MAX_SECONDS COMMAND...: runs with a timeout no later than the shared deadline,
# logs to $OUT/NAME.log, appends {"step", "rc", "seconds"} to steps.jsonl.
run_step() {
  local name=$1 max=$2; shift 2
  local left=$(( START + BUDGET - $(date +%s) ))
  local limit=$(( max < left ? max : left ))
  if (( limit < 5 )); then
    log "SKIP $name: deadline reached"
    echo "{\"step\": \"$name\", \"rc\": null, \"seconds\": 0, \"skipped\": \"deadline\"}" >> "$STEPS"
    return 0
  fi
  log "START $name (timeout ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  log "END $name rc=$rc in ${dt}s: $(tail -n 1 "$OUT/$name.log" | cut -c1-160)"
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $dt}" >> "$STEPS"
  return 0
}

# ---- environment ----
{
  echo "== commit"; git rev-parse HEAD 2>&1; git status --short 2>&1 | head -5
  echo "== nvidia-smi"; nvidia-smi 2>&1 | head -20
  echo "== python"; python3 --version
  python3 -c "import numpy, pybind11; print('numpy', numpy.__version__, 'pybind11', pybind11.__version__)"
  python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.is_available())" 2>&1
  python3 -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  echo "== cmake"; cmake --version | head -1; ninja --version
} > "$OUT/env.log" 2>&1

NVCC=$(command -v nvcc || ls -d /usr/local/cuda*/bin/nvcc 2>/dev/null | sort -V | tail -1)
if [[ -n "$NVCC" ]]; then
  export CUDACXX=$NVCC
  export PATH="$(dirname "$NVCC"):$PATH"
  "$NVCC" --version >> "$OUT/env.log" 2>&1
fi
log "nvcc: ${NVCC:-not found}"

if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/lowbit-site .whl/*.whl > "$OUT/wheels.log" 2>&1
  export PYTHONPATH="/tmp/lowbit-site${PYTHONPATH:+:$PYTHONPATH}"
  log "offline wheels installed into /tmp/lowbit-site"
fi

# ---- build: _core and _cuda in place (one arch: sm_90), the modules land in python/lowbit ----
build_in_place() {
  cmake -S . -B build/device-check -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA=ON \
    -DLOWBIT_CUDA_ARCHS="${LOWBIT_CUDA_ARCHS:-90}" \
    -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" &&
  cmake --build build/device-check -j "${LOWBIT_BUILD_JOBS:-16}" &&
  cp build/device-check/_core*.so build/device-check/_cuda*.so python/lowbit/ &&
  ls -la python/lowbit/*.so
}
run_step build 200 bash -c "$(declare -f build_in_place); build_in_place"
export PYTHONPATH="$PWD/python:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
# are gemv_stream's quant loads 16 bytes wide (LDG.E.128) and free of local-memory spills?
{ CUOBJDUMP=$(command -v cuobjdump || ls -d /usr/local/cuda*/bin/cuobjdump 2>/dev/null | sort -V | tail -1)
  [[ -n "$CUOBJDUMP" ]] && "$CUOBJDUMP" --dump-sass build/device-check/liblowbit_cuda_kernels.a 2>/dev/null |
    awk '/Function : .*gemv_stream_kernel/ {f=$3} f && /LDG/ {split($0, a, "LDG"); op="LDG" substr(a[2], 1, 20); gsub(/ .*/, "", op); c[f" "op]++}
         f && /LDL|STL/ {l[f]++} END {for (k in c) print c[k], k; for (k in l) print "LOCAL", l[k], k}' | sort -k2 | head -60
} > "$OUT/sass.log" 2>&1
python3 -c "import lowbit; from lowbit import cuda; print('has_cuda', lowbit.has_cuda(), cuda._unavailable_reason() if not lowbit.has_cuda() else cuda.device_info(0))" \
  > "$OUT/has_cuda.log" 2>&1
log "$(tail -n 1 "$OUT/has_cuda.log")"

# ---- tests ----
# LOWBIT_CHECK_TESTS: a pytest -k expression to run a subset (a short first run on a lease)
run_step test_cuda 200 python3 -m pytest -m cuda tests/test_cuda.py -q -rs -p no:cacheprovider \
  ${LOWBIT_CHECK_TESTS:+-k "$LOWBIT_CHECK_TESTS"} --junitxml="$OUT/test_cuda.xml"
[[ -z "${LOWBIT_CHECK_TESTS:-}" ]] &&
  run_step test_api 60 python3 -m pytest tests/test_api.py tests/test_cuda.py tests/test_group_quant.py -m "not cuda" -q \
    -p no:cacheprovider

# ---- LOWBIT_CHECK_NCU=1: Nsight Compute on a few large GEMV launches (tools/cuda_ncu_cases.py) ----
if [[ -n "${LOWBIT_CHECK_NCU:-}" ]]; then
  NCU=$(command -v ncu || find /usr/local /opt -maxdepth 6 -name ncu -type f -perm -u+x 2>/dev/null | sort -V | tail -1)
  run_step ncu 120 "$NCU" --clock-control none --kernel-name regex:gemv_stream --launch-skip 0 --launch-count 8 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis python3 tools/cuda_ncu_cases.py
fi

# ---- benchmark ----
# LOWBIT_CHECK_BENCH_ARGS: e.g. "--ms 1,16 --types q4_0,q4_k"
[[ -z "${LOWBIT_CHECK_NO_BENCH:-}" ]] && run_step bench 170 python3 bench/cuda_bench.py --out "$OUT/bench.json" --time-budget 110 ${LOWBIT_CHECK_BENCH_ARGS:-}

# ---- memcheck over the CUDA tests (quick shapes; torch/cupy are left out: instrumenting their
# modules takes minutes; the out-of-memory test is left out: it provokes an API error on purpose) ----
SANITIZER=$(command -v compute-sanitizer || ls -d /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | sort -V | tail -1)
[[ -z "$SANITIZER" ]] && SANITIZER=$(find /usr/local /opt -maxdepth 7 -name compute-sanitizer -type f -perm -u+x 2>/dev/null | sort -V | tail -1)
if [[ -n "$SANITIZER" && -z "${LOWBIT_CHECK_NO_MEMCHECK:-}" ]]; then
  run_step memcheck 90 env LOWBIT_CUDA_TEST_QUICK=1 "$SANITIZER" --tool memcheck --error-exitcode 99 \
    python3 -m pytest -m cuda tests/test_cuda.py -q -x -p no:cacheprovider \
    -k "not torch and not cupy and not out_of_memory and not leaks and not large and not offload"
else
  log "compute-sanitizer not found: memcheck skipped"
  echo '{"step": "memcheck", "rc": null, "seconds": 0, "skipped": "compute-sanitizer not found"}' >> "$STEPS"
fi

# ---- results.json ----
python3 - "$OUT" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
steps = [json.loads(line) for line in open(os.path.join(out, "steps.jsonl")) if line.strip()]
for s in steps:
    path = os.path.join(out, s["step"] + ".log")
    if os.path.exists(path):
        lines = open(path, errors="replace").read().splitlines()
        s["tail"] = lines[-15:]
        summary = [l for l in lines if re.search(r"\d+ (passed|failed|error)|ERROR SUMMARY", l)]
        s["summary"] = summary[-1] if summary else (lines[-1] if lines else "")
res = {"steps": steps}
try:
    res["has_cuda"] = open(os.path.join(out, "has_cuda.log")).read().strip()
except OSError:
    pass
try:
    res["bench"] = json.load(open(os.path.join(out, "bench.json")))
except Exception as e:
    res["bench"] = {"error": repr(e)}
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=1)
print(json.dumps({s["step"]: [s.get("rc"), s.get("seconds"), s.get("summary", s.get("skipped", ""))] for s in steps}, indent=1))
EOF
log "done in $(( $(date +%s) - START ))s -> $OUT/results.json"
