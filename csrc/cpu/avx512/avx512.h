// AVX-512 (F, BW, VL, DQ) kernels, csrc/cpu/avx512/<type>.cpp, only where 16-lane vectors clearly
// pay: the activation quantizers (q8_0, q8_K: 32 / 256 floats, whole zmm multiples) and the most
// used weight dequantizers. Every other slot is null and falls back to AVX2.
#pragma once
#include <cstdint>

namespace lowbit::avx512 {

void quantize_row_q8_0(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_q8_k(const float* x, void* y, int64_t k, const float* imatrix);

void dequantize_row_q4_0(const void* x, float* y, int64_t k);
void dequantize_row_q8_0(const void* x, float* y, int64_t k);
void dequantize_row_q4_k(const void* x, float* y, int64_t k);
void dequantize_row_q6_k(const void* x, float* y, int64_t k);

}  // namespace lowbit::avx512
