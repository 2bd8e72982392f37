#include "group_quant.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "thread_pool.h"

namespace lowbit {

namespace {

template <typename Fn, typename Get>
Fn resolve(Isa cap, Isa* chosen, Get get) {
    for (int i = static_cast<int>(cap); i >= 0; --i) {
        const Isa isa = static_cast<Isa>(i);
        if (!isa_supported(isa)) continue;
        const GroupKernels* table = nullptr;
        if (isa == Isa::GENERIC) table = &group_kernels_generic();
#if defined(LOWBIT_HAVE_AVX2)
        if (isa == Isa::AVX2) table = &group_kernels_avx2();
#endif
#if defined(LOWBIT_HAVE_AVX512)
        if (isa == Isa::AVX512) table = &group_kernels_avx512();
#endif
        Fn fn = table ? get(*table) : nullptr;
        if (fn) {
            if (chosen) *chosen = isa;
            return fn;
        }
    }
    return nullptr;
}

[[noreturn]] void fail(const char* op, const std::string& msg) {
    throw std::invalid_argument(std::string("[") + op + "] " + msg);
}

// Below this many activation rows the packed weights are streamed; from it on, 64 weight rows at a time
// are expanded to f32 once and reused by every activation row (the f32 gemm kernel's panels).
constexpr int64_t kPanelRows = 16;
constexpr int64_t kGemvTile = 16, kGemmTile = 64, kMaxSlab = 1024;

}  // namespace

group_dequant_row_fn resolve_group_dequant(Isa cap, Isa* chosen) {
    return resolve<group_dequant_row_fn>(cap, chosen, [](const GroupKernels& k) { return k.dequant_row; });
}

group_gemv_fn resolve_group_gemv(Isa cap, Isa* chosen) {
    return resolve<group_gemv_fn>(cap, chosen, [](const GroupKernels& k) { return k.gemv; });
}

void check_group_weights(const char* op, const GroupWeights& w) {
    if (w.bits != 2 && w.bits != 3 && w.bits != 4 && w.bits != 8)
        fail(op, "bits must be 2, 3, 4 or 8, got " + std::to_string(w.bits));
    if (w.n < 1 || w.k < 1 || w.groups < 1) fail(op, "n, k and groups must be >= 1");
    if (w.kp % kGroupChunk || w.kp < w.k) fail(op, "padded k must be a multiple of 32 and >= k");
    if (w.row_bytes != (w.bits == 4 ? w.kp / 2 : w.kp)) fail(op, "row_bytes does not match bits and padded k");
    if (w.chunk_start[0] != 0 || int64_t(w.chunk_start[w.groups]) * kGroupChunk != w.kp)
        fail(op, "chunk_start must run from 0 to kp / 32");
    for (int64_t g = 0; g < w.groups; ++g)
        if (w.chunk_start[g + 1] < w.chunk_start[g]) fail(op, "chunk_start must not decrease");
    for (int64_t c = 0; c < w.kp; ++c)
        if (w.xsrc[c] < -1 || w.xsrc[c] >= w.k) fail(op, "xsrc holds a column outside [-1, k)");
}

void group_dequantize(const GroupWeights& w, float* out, int threads, Isa isa) {
    const group_dequant_row_fn dq = resolve_group_dequant(isa);
    ThreadPool::global().parallel_for(w.n, threads, [&](int64_t j0, int64_t j1) {
        std::vector<float> row(static_cast<size_t>(w.kp));
        for (int64_t j = j0; j < j1; ++j) {
            dq(w, j, row.data());
            float* o = out + j * w.k;
            for (int64_t c = 0; c < w.kp; ++c)
                if (w.xsrc[c] >= 0) o[w.xsrc[c]] = row[c];
        }
    });
}

void group_matmul(const GroupWeights& w, const float* x, int64_t m, float* y, int threads, Isa isa) {
    if (m < 1) fail("matmul", "x must have at least one row");
    const int64_t kp = w.kp, G = w.groups, n = w.n;
    // the activations in the weights' column order, padded, and their per-group sums
    std::vector<float> xp(static_cast<size_t>(m * kp)), xg(static_cast<size_t>(m * G));
    ThreadPool::global().parallel_for(m, threads, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const float* xi = x + i * w.k;
            float* pi = xp.data() + i * kp;
            for (int64_t c = 0; c < kp; ++c) pi[c] = w.xsrc[c] >= 0 ? xi[w.xsrc[c]] : 0.0f;
            for (int64_t g = 0; g < G; ++g) {
                float s = 0.0f;
                for (int64_t c = w.chunk_start[g] * kGroupChunk; c < w.chunk_start[g + 1] * kGroupChunk; ++c) s += pi[c];
                xg[i * G + g] = s;
            }
        }
    });
    if (m < kPanelRows) {
        const group_gemv_fn gemv = resolve_group_gemv(isa);
        const int64_t tiles = (n + kGemvTile - 1) / kGemvTile;
        ThreadPool::global().parallel_for(tiles, threads, [&](int64_t t0, int64_t t1) {
            gemv(w, t0 * kGemvTile, std::min(n, t1 * kGemvTile), xp.data(), xg.data(), m, y, n);
        });
        return;
    }
    const group_dequant_row_fn dq = resolve_group_dequant(isa);
    const gemm_fn gemm = resolve_gemm(QType::F32, isa);
    const int64_t n_tiles = (n + kGemmTile - 1) / kGemmTile, slabs = (m + kMaxSlab - 1) / kMaxSlab;
    ThreadPool::global().parallel_for(slabs * n_tiles, threads, [&](int64_t t0, int64_t t1) {
        std::vector<float> panel(static_cast<size_t>(kGemmTile * kp));
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t slab = t / n_tiles, j0 = (t % n_tiles) * kGemmTile, nt = std::min(kGemmTile, n - j0);
            const int64_t i0 = m * slab / slabs, i1 = m * (slab + 1) / slabs;
            for (int64_t j = 0; j < nt; ++j) dq(w, j0 + j, panel.data() + j * kp);
            GemmArgs p{};
            p.m = i1 - i0;
            p.n = nt;
            p.k = kp;
            p.w = panel.data();
            p.w_row_bytes = kp * static_cast<int64_t>(sizeof(float));
            p.a = xp.data() + i0 * kp;
            p.a_row_bytes = kp * static_cast<int64_t>(sizeof(float));
            p.c = y + i0 * n + j0;
            p.ldc = n;
            gemm(p);
        }
    });
}

}  // namespace lowbit
