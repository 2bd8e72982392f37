// AVX-512 instances of the SIMD IQ4 quantizers (../quantize_iq4_simd.h): 32 blocks (iq4_nl) or the
// sub-blocks of four super-blocks (iq4_xs) searched at once, one per lane, as two interleaved
// 16-lane vectors (VecX2: ~5% over one vector on Zen 4). A row's tail that fills no pair runs on one
// 16-lane vector.
#include "quantize_iq4_avx512.h"

// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* pass-through operand
// is self-initialized on purpose); a false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "../quantize_iq4_simd.h"
#include "iq4_levels_avx512.h"
#include "kquant_search_avx512.h"

namespace lowbit {

using Vec = simd::VecX2<simd::VecAvx512>;

void quantize_row_iq4_nl_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_iq4_nl<Vec>(x, y, k, imatrix);
}
void quantize_row_iq4_xs_avx512(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_iq4_xs<Vec>(x, y, k, imatrix);
}

}  // namespace lowbit
