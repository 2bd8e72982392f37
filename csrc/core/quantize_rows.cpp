#include "quantize_rows.h"

#include <atomic>
#include <limits>

#include "thread_pool.h"

namespace lowbit {

bool row_is_finite(const float* x, int64_t k) {
    // x*0 is NaN exactly for inf and NaN, and a NaN survives any sum: eight independent
    // accumulators keep the loop free of a serial add chain.
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += x[i + j] * 0.0f;
    for (; i < k; ++i) acc[0] += x[i] * 0.0f;
    float total = 0.0f;
    for (float a : acc) total += a;
    return total == 0.0f;
}

int64_t quantize_rows(quantize_row_fn fn, const float* x, int64_t rows, int64_t k, uint8_t* y, int64_t row_bytes,
                      const float* imatrix, bool check_finite, int threads,
                      const std::function<void(int64_t)>& after_row) {
    constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
    std::atomic<int64_t> bad{kNone};
    ThreadPool::global().parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* row = x + r * k;
            if (check_finite && !row_is_finite(row, k)) {
                int64_t cur = bad.load();
                while (r < cur && !bad.compare_exchange_weak(cur, r)) {}
                continue;
            }
            fn(row, y + r * row_bytes, k, imatrix);
            if (after_row) after_row(r);
        }
    });
    const int64_t b = bad.load();
    return b == kNone ? -1 : b;
}

}  // namespace lowbit
