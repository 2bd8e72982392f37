// AVX-512 IQ4_NL / IQ4_XS quantizers, bit-identical to the reference (see ../quantize_iq4_simd.h).
#pragma once
#include <cstdint>

namespace lowbit {

void quantize_row_iq4_nl_avx512(const float* x, void* y, int64_t k, const float* imatrix);
void quantize_row_iq4_xs_avx512(const float* x, void* y, int64_t k, const float* imatrix);

}  // namespace lowbit
