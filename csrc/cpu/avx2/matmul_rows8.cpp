// The AVX2 instances of the rows8 kernels (matmul_rows8.h).
#include "matmul_avx2.h"
#include "matmul_rows8.h"

namespace lowbit::avx2 {

void gemm_rows8_q4_0(const GemmArgs& p) { lowbit::gemm_rows8_q4_0<DotAvx2>(p); }
void gemm_rows8_q4_1(const GemmArgs& p) { lowbit::gemm_rows8_q4_1<DotAvx2>(p); }
void gemm_rows8_q8_0(const GemmArgs& p) { lowbit::gemm_rows8_q8_0<DotAvx2>(p); }

}  // namespace lowbit::avx2
