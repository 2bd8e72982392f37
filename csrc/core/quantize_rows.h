// Quantizing the rows of a matrix in parallel, shared by lowbit.quantize and by matmul's activation
// quantization: both skip (and report) rows holding NaN or inf, whose float-to-int conversions would
// be undefined behaviour in the kernels.
#pragma once
#include <cstdint>
#include <functional>

#include "kernels.h"

namespace lowbit {

// True when x[0..k) holds no inf and no NaN.
bool row_is_finite(const float* x, int64_t k);

// y row r = fn(x row r) for r in [0, rows) on `threads` pool threads; after_row(r), if given, runs on
// the same thread once row r is written. check_finite skips rows with NaN / inf. Returns the first
// such row, or -1.
int64_t quantize_rows(quantize_row_fn fn, const float* x, int64_t rows, int64_t k, uint8_t* y, int64_t row_bytes,
                      const float* imatrix, bool check_finite, int threads,
                      const std::function<void(int64_t)>& after_row = nullptr);

}  // namespace lowbit
