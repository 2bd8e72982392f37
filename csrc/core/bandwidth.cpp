// A STREAM-like read of a large buffer: the memory-bandwidth roofline that GEMV benchmarks report
// their fraction of. Integer XOR-folding with independent accumulators keeps the loop load-bound.
#include "bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "thread_pool.h"

namespace lowbit {

double read_bandwidth_gbps(size_t nbytes, int threads, int repeats) {
    const size_t n = std::max<size_t>(nbytes / sizeof(uint64_t), 1024);
    std::vector<uint64_t> buf(n);
    // Touch every page from the pool threads first so pages are resident (first-touch placement).
    ThreadPool::global().parallel_for(static_cast<int64_t>(n), threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    });
    std::vector<uint64_t> sink(static_cast<size_t>(std::max(threads, 1)) * 8, 0);
    double best = 1e30;
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        ThreadPool::global().parallel_for(static_cast<int64_t>(n), threads, [&](int64_t b, int64_t e) {
            uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            int64_t i = b;
            for (; i + 4 <= e; i += 4) {
                a0 ^= buf[i];
                a1 ^= buf[i + 1];
                a2 ^= buf[i + 2];
                a3 ^= buf[i + 3];
            }
            for (; i < e; ++i) a0 ^= buf[i];
            sink[(b * 7) % sink.size()] += a0 ^ a1 ^ a2 ^ a3;  // keeps the loads alive
        });
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, dt);
    }
    volatile uint64_t keep = 0;
    for (uint64_t s : sink) keep = keep + s;
    (void)keep;
    return static_cast<double>(n * sizeof(uint64_t)) / best / 1e9;
}

}  // namespace lowbit
