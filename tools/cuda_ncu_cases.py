"""A few GEMV launches for Nsight Compute (tools/cuda-device-check.sh's profile step):

    ncu --clock-control none --kernel-name regex:gemv_stream python3 tools/cuda_ncu_cases.py

Each case runs twice (the first warms up); shapes are the benchmark's large m = 1 / 4 cases."""
import numpy as np

import lowbit
from lowbit import cuda as lcuda


def tiled(qtype, n, k):
    base = lowbit.quantize(np.random.default_rng(0).standard_normal((64, k)).astype(np.float32), qtype)
    rows = base.data.reshape(64, -1)
    return lowbit.QuantizedTensor(np.ascontiguousarray(np.tile(rows, (n // 64, 1))).reshape(-1), qtype, (n, k))


def group(n, k):
    rng = np.random.default_rng(0)
    g = k // 128
    return lowbit.GroupQuantizedTensor.from_grid(rng.integers(0, 16, (n, k)), rng.random((n, g)) * 0.01,
                                                 rng.integers(0, 16, (n, g)).astype(np.float32), None, 4, 128)


for name, w in (("q4_0 8192x8192", tiled("q4_0", 8192, 8192).to("cuda")),
                ("gptq4 8192x8192", group(8192, 8192).to("cuda"))):
    for m in (1, 4):
        x = np.random.default_rng(m).standard_normal((m, 8192)).astype(np.float32)
        for _ in range(2):
            lcuda.matmul(x, w)
        print(name, "m =", m, "done", flush=True)
