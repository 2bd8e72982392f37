// attention_f16: hands (query row, head) items to the thread pool. Items are dealt round-robin
// (worker w takes w, w + nt, ...) so every worker gets early and late query rows alike: the causal
// work of row t grows with t. A prompt (T > 1) reads every cache row for many queries, so the rows are
// widened to f32 once first (the SIMD kernel then does plain f32 loads); one decoded token reads each
// row once per query head and converts as it goes.
#include "attention.h"

#include <vector>

#include "kernels.h"
#include "thread_pool.h"
#include "types.h"

namespace lowbit {

void attention_f16(const AttentionArgs& args, int threads, bool simd) {
    AttentionArgs a = args;
    const int64_t items = a.T * a.n_head;
    const int64_t nt = threads < 1 ? 1 : (threads > items ? items : threads);
    std::vector<float> k32, v32;
    if (simd && a.T > 1) {
        const int64_t row = a.n_head_kv * a.head_dim, rows = a.pos0 + a.T;
        k32.resize(static_cast<size_t>(rows * row));
        v32.resize(static_cast<size_t>(rows * row));
        const dequantize_row_fn widen = resolve_dequantize(QType::F16, default_isa());
        ThreadPool::global().parallel_for(rows, threads < 1 ? 1 : threads, [&](int64_t b, int64_t e) {
            widen(a.k + b * row, k32.data() + b * row, (e - b) * row);
            widen(a.v + b * row, v32.data() + b * row, (e - b) * row);
        });
        a.k32 = k32.data();
        a.v32 = v32.data();
    }
#if defined(LOWBIT_HAVE_AVX2)
    auto kernel = simd ? avx2::attention_items : ref::attention_items;
#else
    (void)simd;
    auto kernel = ref::attention_items;
#endif
    ThreadPool::global().parallel_for(nt, static_cast<int>(nt), [&](int64_t b, int64_t e) {
        std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(a)));
        for (int64_t w = b; w < e; ++w) kernel(a, w, items, nt, scratch.data());
    });
}

}  // namespace lowbit
