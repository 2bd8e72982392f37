#include "matmul.h"
#ifndef LOWBIT_GEMV_BYTES
#define LOWBIT_GEMV_BYTES (64 << 10)
#endif

#include "../ref/ref.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <functional>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "blocks.h"
#include "quantize_rows.h"
#include "rows8.h"
#include "fp16.h"
#include "thread_pool.h"

namespace lowbit {

int act_group(QType dot_type) {
    switch (dot_type) {
        case QType::Q8_0: return QK8_0;
        case QType::Q8_1: return QK8_1;
        case QType::Q8_K: return 16;
        default: return 0;
    }
}

void act_scales_and_sums(QType dot, const void* a, int64_t k, float* ds) {
    if (dot == QType::Q8_0) {
        const auto* b = static_cast<const block_q8_0*>(a);
        for (int64_t i = 0; i < k / QK8_0; ++i) {
            int sum = 0;
            for (int j = 0; j < QK8_0; ++j) sum += b[i].qs[j];
            ds[2 * i] = fp16_to_f32(b[i].d);
            ds[2 * i + 1] = ds[2 * i] * static_cast<float>(sum);
        }
    } else if (dot == QType::Q8_1) {
        const auto* b = static_cast<const block_q8_1*>(a);
        for (int64_t i = 0; i < k / QK8_1; ++i) {
            ds[2 * i] = fp16_to_f32(b[i].d);
            ds[2 * i + 1] = fp16_to_f32(b[i].s);  // ggml's dot uses the stored (f16-rounded) s
        }
    } else if (dot == QType::Q8_K) {
        const auto* b = static_cast<const block_q8_K*>(a);
        for (int64_t i = 0; i < k / QK_K; ++i)
            for (int g = 0; g < QK_K / 16; ++g) {
                ds[2 * (16 * i + g)] = b[i].d;
                ds[2 * (16 * i + g) + 1] = b[i].d * static_cast<float>(b[i].bsums[g]);
            }
    }
}

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("[matmul] " + msg); }

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, FreeDeleter>;

// Uninitialized, 64-byte aligned: the quantized activations are written in full before use.
Buffer alloc_buffer(size_t bytes) {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return Buffer(static_cast<uint8_t*>(p));
}

// Quantizes the m rows of x to the dot type (in parallel) and fills a_ds. Returns the first row with
// NaN / inf, or -1.
int64_t quantize_activations(const float* x, int64_t m, int64_t k, QType dot, Isa isa, uint8_t* a, int64_t a_rb,
                             float* ds, int threads) {
    const int g = act_group(dot);
    if (const quantize_act_fn fused = resolve_quantize_act(dot, isa)) {
        // The ISA's from_float writes the levels and the a_ds pairs in one pass over the row.
        const int64_t ds_row = (k / g) * 2;
        std::atomic<int64_t> bad{std::numeric_limits<int64_t>::max()};
        ThreadPool::global().parallel_for(m, threads, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                if (fused(x + r * k, a + r * a_rb, ds + r * ds_row, k)) continue;
                int64_t cur = bad.load();
                while (r < cur && !bad.compare_exchange_weak(cur, r)) {}
            }
        });
        const int64_t b = bad.load();
        return b == std::numeric_limits<int64_t>::max() ? -1 : b;
    }
    // q8_0 / q8_1 as ggml's CPU mul_mat quantizes activations (not the storage rounding); the rest
    // (q8_K, f16, bf16, f32) are the same in both.
    quantize_row_fn quant = resolve_quantize(dot, isa);
    if (dot == QType::Q8_0) quant = ref::quantize_act_row_q8_0;
    if (dot == QType::Q8_1) quant = ref::quantize_act_row_q8_1;
    std::function<void(int64_t)> scales_and_sums;
    if (g) scales_and_sums = [&](int64_t r) { act_scales_and_sums(dot, a + r * a_rb, k, ds + r * (k / g) * 2); };
    return quantize_rows(quant, x, m, k, a, a_rb, nullptr, type_info(dot).is_quantized, threads, scales_and_sums);
}

// How the (m, n) output is cut among the threads. Few rows: one slab of weight rows per thread,
// each streamed once past all m activation rows. Many rows: the rows are cut into near-equal slabs of
// at most 1024 (a slab's activations stay in L3), and the work, slab by slab and 16 weight columns
// (one AVX-512 panel, two AVX2 ones) at a time, is dealt out in equal contiguous runs: each thread
// gets one gemm call per slab it touches, and the kernel unpacks its columns 64 at a time and reuses
// them for every row of the slab. Equal runs rather than fixed 64-column tiles: SmolLM2's n = 192 or
// 576 make 3 or 9 such tiles, which 2 threads split 2:1 or 5:4. Slabs are added (more unpacking)
// only when there are too few column units to balance the threads. A slab never has fewer than
// kMinSlab rows, so a kernel that picks its strategy from its m sees the same m whatever the thread
// count: results do not depend on it (the column split never changes a result).
struct Tiling {
    int64_t m_slabs;
    int64_t n_unit;  // columns per unit of work
    int64_t units;   // m_slabs * units per slab
};

constexpr int64_t kFewRows = 8;
constexpr int64_t kMinSlab = 64;
constexpr int64_t kColumnUnit = 16;
static_assert(kColumnUnit % kRows8 == 0, "column units keep rows8 groups whole");
constexpr int64_t kGemvBytesPerThread = LOWBIT_GEMV_BYTES;

Tiling choose_tiling(int64_t m, int64_t n, int threads) {
    auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    if (m <= kFewRows) {
        const int64_t n_unit = std::min(n, ceil_div(ceil_div(n, threads), 16) * 16);
        return {1, n_unit, ceil_div(n, n_unit)};
    }
    const int64_t per_slab = ceil_div(n, kColumnUnit);
    int64_t slabs = ceil_div(m, 1024);
    while (per_slab * slabs < 8 * threads && m / (slabs + 1) >= kMinSlab) ++slabs;
    return {slabs, kColumnUnit, slabs * per_slab};
}

}  // namespace

void matmul(const float* x, int64_t m, int64_t k, const void* w, int64_t n, QType t, float* y, int threads, Isa isa,
            Layout layout) {
    const TypeInfo& ti = type_info(t);
    if (ti.is_activation)
        fail(std::string(ti.name) + " is an activation-only type (ggml has no dot product with it as weights)");
    if (m <= 0 || n <= 0 || k <= 0)
        fail("m, n and k must be >= 1, got m=" + std::to_string(m) + " n=" + std::to_string(n) +
             " k=" + std::to_string(k));
    if (k % ti.block_size != 0)
        fail("k=" + std::to_string(k) + " is not a multiple of " + ti.name + "'s block size " +
             std::to_string(ti.block_size));
    if (threads < 1) fail("threads must be >= 1, got " + std::to_string(threads));
    const QType dot = ti.dot_type;
    const gemm_fn gemm = resolve_gemm(t, isa);
    if (!gemm) fail(std::string("no kernel for ") + ti.name);
    const bool rows8 = layout == Layout::ROWS8;
    if (rows8 && !rows8_supported(t)) fail(std::string(ti.name) + " weights have no rows8 layout");
    if (rows8 && n % kRows8) fail("rows8 weights need n % 8 == 0, got n=" + std::to_string(n));
    const gemm_fn gemm8 = rows8 ? resolve_gemm_rows8(t, isa) : nullptr;

    GemmArgs p{};
    p.k = k;
    p.n_all = n;
    p.w = w;
    p.w_row_bytes = row_bytes(ti, k);
    p.a_row_bytes = row_bytes(type_info(dot), k);
    Buffer abuf, dsbuf;
    if (dot == QType::F32) {
        p.a = x;  // f32 weights: the activations are used as they are
    } else {
        abuf = alloc_buffer(static_cast<size_t>(m * p.a_row_bytes));
        const int g = act_group(dot);
        if (g) dsbuf = alloc_buffer(static_cast<size_t>(m * (k / g) * 2) * sizeof(float));
        auto* ds = reinterpret_cast<float*>(dsbuf.get());
        // a few rows quantize in well under a microsecond each: waking the pool for them costs more
        const int qthreads = m <= kFewRows ? 1 : threads;
        const int64_t bad = quantize_activations(x, m, k, dot, isa, abuf.get(), p.a_row_bytes, ds, qthreads);
        if (bad >= 0)
            fail("row " + std::to_string(bad) + " of x contains NaN or inf; " + ti.name +
                 " activations are quantized to " + type_info(dot).name + ", which needs finite values");
        p.a = abuf.get();
        p.a_ds = ds;
    }

    // A few-row product over a small matrix (SmolLM2's 576 x 576 q4_0 is 186 KB, ~5 us on one core)
    // is over before a second thread has woken: below kGemvBytesPerThread of weights per thread the
    // hand-off costs more than the work saves (measured: 2 threads at half the speed of 1 there).
    if (m <= kFewRows) {
        const int64_t bytes = n * p.w_row_bytes * std::max<int64_t>(1, m / 2);
        threads = static_cast<int>(std::clamp<int64_t>(bytes / kGemvBytesPerThread, 1, threads));
    }
    const Tiling tl = choose_tiling(m, n, threads);
    const int64_t per_slab = tl.units / tl.m_slabs;
    const int g = act_group(dot);
    const int64_t ds_row = g ? (k / g) * 2 : 0;
    // One gemm call per slab that the run [u0, u1) of units touches.
    ThreadPool::global().parallel_for(tl.units, threads, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1;) {
            const int64_t slab = u / per_slab, first = u % per_slab;
            const int64_t last = std::min(u1 - slab * per_slab, per_slab);  // one past, within the slab
            const int64_t j0 = first * tl.n_unit, j1 = std::min(n, last * tl.n_unit);
            const int64_t i0 = m * slab / tl.m_slabs, i1 = m * (slab + 1) / tl.m_slabs;
            GemmArgs q = p;
            q.m = i1 - i0;
            q.n = j1 - j0;
            q.w = static_cast<const uint8_t*>(p.w) + j0 * p.w_row_bytes;
            q.a = static_cast<const uint8_t*>(p.a) + i0 * p.a_row_bytes;
            q.a_ds = p.a_ds ? p.a_ds + i0 * ds_row : nullptr;
            q.c = y + i0 * n + j0;
            q.ldc = n;
            if (!rows8)
                gemm(q);
            else if (gemm8)
                gemm8(q);
            else
                gemm_rows8_unpacked(q, t, gemm);
            u = slab * per_slab + last;
        }
    });
}

}  // namespace lowbit
