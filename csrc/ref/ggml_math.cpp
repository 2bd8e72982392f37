// ggml's softmax / SiLU rows, generic build (std::fma from libm). The AVX2+FMA TU compiles the same
// header with the FMA instruction inline; both are bit-identical.
#include "../core/ggml_math.h"
#include "ref.h"

namespace lowbit::ref {

void ggml_softmax_rows(float* s, int64_t begin, int64_t end, int64_t n, const int64_t* valid, bool v512,
                       bool round_f16) {
    for (int64_t r = begin; r < end; ++r) ggml_softmax_row(s + r * n, n, valid ? valid[r] : n, v512, round_f16);
}

void ggml_silu(const float* x, float* y, int64_t n, bool v512) { ggml_silu_row(x, y, n, v512); }

}  // namespace lowbit::ref
