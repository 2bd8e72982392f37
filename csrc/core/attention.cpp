// attention_f16: hands (query row, head) items to the thread pool. Items are dealt round-robin
// (worker w takes w, w + nt, ...) so every worker gets early and late query rows alike: the causal
// work of row t grows with t.
#include "attention.h"

#include <vector>

#include "thread_pool.h"

namespace lowbit {

void attention_f16(const AttentionArgs& a, int threads, bool simd) {
    const int64_t items = a.T * a.n_head;
    const int64_t nt = threads < 1 ? 1 : (threads > items ? items : threads);
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
