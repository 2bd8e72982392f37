// Small helpers shared by the reference quantizers of one family.
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit::ref {

// The importance weights of the legacy and K-quant imatrix paths: qw[j] * sqrt(sigma2 + x[j]^2),
// where sigma2 is the mean square of the whole row (ggml: quantize_row_*_impl).
static inline float row_sigma2(const float* x, int64_t k) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < k; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / k;
}

}  // namespace lowbit::ref
