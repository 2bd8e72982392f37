// A STREAM-like read of a large buffer: the memory-bandwidth roofline that GEMV benchmarks report
// their fraction of. It must be the best read this machine does, or the fractions flatter the kernels:
// the buffer is allocated like numpy's large arrays (2 MB-aligned, transparent huge pages requested:
// 4 KB pages had measured 20% less than an f16 GEMV streaming a numpy array), and read with 32-byte
// loads into independent XOR accumulators so the loop is bound by the loads alone.
#include "bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "thread_pool.h"

namespace lowbit {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

uint64_t xor_fold_u64(const uint64_t* p, int64_t n) {
    uint64_t a[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int s = 0; s < 8; ++s) a[s] ^= p[i + s];
    for (; i < n; ++i) a[0] ^= p[i];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) uint64_t xor_fold_avx2(const uint64_t* p, int64_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {  // 128 bytes: two cache lines per iteration
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
    }
    const __m256i v = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v);
    return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ xor_fold_u64(p + i, n - i);
}
#endif

uint64_t xor_fold(const uint64_t* p, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) return xor_fold_avx2(p, n);
#endif
    return xor_fold_u64(p, n);
}

}  // namespace

double read_bandwidth_gbps(size_t nbytes, int threads, int repeats) {
    const size_t bytes = (std::max<size_t>(nbytes, 1 << 16) + kHugePage - 1) / kHugePage * kHugePage;
    std::unique_ptr<uint64_t, decltype(&std::free)> mem(static_cast<uint64_t*>(std::aligned_alloc(kHugePage, bytes)),
                                                        &std::free);
    if (!mem) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(mem.get(), bytes, MADV_HUGEPAGE);  // a hint: without THP the read is slower, never wrong
#endif
    uint64_t* buf = mem.get();
    const int64_t n = static_cast<int64_t>(bytes / sizeof(uint64_t));
    // Split into 128-byte units so every thread's range keeps the vector loop's alignment.
    const int64_t units = n / 16;
    // Touch every page from the pool threads first so pages are resident (first-touch placement).
    ThreadPool::global().parallel_for(units, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b * 16; i < e * 16; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    });
    std::vector<uint64_t> sink(static_cast<size_t>(std::max(threads, 1)) * 8, 0);
    double best = 1e30;
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        ThreadPool::global().parallel_for(units, threads, [&](int64_t b, int64_t e) {
            sink[(b * 7) % sink.size()] += xor_fold(buf + b * 16, (e - b) * 16);  // keeps the loads alive
        });
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, dt);
    }
    volatile uint64_t keep = 0;
    for (uint64_t s : sink) keep = keep + s;
    (void)keep;
    return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace lowbit
