// AVX-512 instances of the SIMD K-quant quantizers (../quantize_kquant_simd.h): 32 sub-blocks
// searched at once, as two 16-lane vectors interleaved (VecX2): each group's search is a chain of
// dependent float sums, and a second independent vector hides that latency (~1.03-1.2x on Zen 4).
#include "quantize_kquant_avx512.h"

// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* pass-through operand
// is self-initialized on purpose); a false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "../quantize_kquant_simd.h"
#include "../kquant_vec_x2.h"
#include "kquant_search_avx512.h"

namespace lowbit {

using Vec = simd::VecX2<simd::VecAvx512>;

void quantize_row_q2_k_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_q2_k<Vec>(x, y, k, imatrix);
}
void quantize_row_q3_k_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_q3_k<Vec>(x, y, k, imatrix);
}
void quantize_row_q4_k_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_q45_k<Vec, 15, block_q4_K>(x, y, k, imatrix);
}
void quantize_row_q5_k_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_q45_k<Vec, 31, block_q5_K>(x, y, k, imatrix);
}
void quantize_row_q6_k_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_q6_k<Vec>(x, y, k, imatrix);
}

}  // namespace lowbit
