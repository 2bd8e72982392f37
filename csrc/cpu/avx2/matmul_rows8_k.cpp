// The AVX2 instances of the K-quant rows8 kernels (matmul_rows8_k.h). A file of their own: in one unit
// with the q4_0 / q4_1 tiles, GCC's unit growth limit stopped inlining the small helpers into the q4_0
// tile (q4_0 28672 x 4096 m = 4: 5.3 -> 8.6 ms).
#include "matmul_avx2.h"
#include "matmul_rows8_k.h"

namespace lowbit::avx2 {

void gemm_rows8_q4_k(const GemmArgs& p) { lowbit::gemm_rows8_q45_k<DotAvx2, false>(p); }
void gemm_rows8_q5_k(const GemmArgs& p) { lowbit::gemm_rows8_q45_k<DotAvx2, true>(p); }
void gemm_rows8_iq4_xs(const GemmArgs& p) { lowbit::gemm_rows8_iq4_xs<DotAvx2>(p); }

}  // namespace lowbit::avx2
