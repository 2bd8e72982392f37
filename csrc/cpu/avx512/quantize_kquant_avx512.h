// AVX-512 K-quant quantizers, bit-identical to the reference (see ../quantize_kquant_simd.h).
#pragma once
#include <cstdint>

namespace lowbit {

void quantize_row_q2_k_avx512(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_q3_k_avx512(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_q4_k_avx512(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_q5_k_avx512(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_q6_k_avx512(const float* x, void* y, int64_t k, const float* imatrix);

}  // namespace lowbit
