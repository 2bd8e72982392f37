// AVX2 instances of the SIMD IQ4 quantizers (../quantize_iq4_simd.h): 16 blocks (iq4_nl) or the
// sub-blocks of two super-blocks (iq4_xs) searched at once, one per lane, as two interleaved 8-lane
// vectors (VecX2: ~5% over one vector on Zen 4; the search is throughput-bound, not latency-bound).
// A row's tail that fills no pair runs on one 8-lane vector.
#include "quantize_iq4_avx2.h"

#include "../quantize_iq4_simd.h"
#include "iq4_levels_avx2.h"
#include "kquant_search_avx2.h"

namespace lowbit {

using Vec = simd::VecX2<simd::VecAvx2>;

void quantize_row_iq4_nl_avx2(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_iq4_nl<Vec>(x, y, k, imatrix);
}
void quantize_row_iq4_xs_avx2(const float* x, void* y, int64_t k, const float* imatrix) {
    simd::quantize_row_iq4_xs<Vec>(x, y, k, imatrix);
}

}  // namespace lowbit
