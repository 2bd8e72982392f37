// ggml's softmax / SiLU rows eight lanes at a time (ggml_math_simd.h); same bits as the scalar header.
#include "avx2.h"
#include "ggml_math_simd.h"

namespace lowbit::avx2 {

void ggml_softmax_rows(float* s, int64_t begin, int64_t end, int64_t n, const int64_t* valid, bool v512,
                       bool round_f16) {
    for (int64_t r = begin; r < end; ++r) ggml_softmax_row_avx2(s + r * n, n, valid ? valid[r] : n, v512, round_f16);
}

void ggml_silu(const float* x, float* y, int64_t n, bool v512) { ggml_silu_row_avx2(x, y, n, v512); }

}  // namespace lowbit::avx2
