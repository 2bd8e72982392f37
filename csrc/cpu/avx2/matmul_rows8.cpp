// The AVX2 instances of the rows8 kernels (matmul_rows8.h).
#include "matmul_avx2.h"
#include "matmul_rows8.h"

namespace lowbit::avx2 {

void gemm_rows8_q4_0(const GemmArgs& p) { lowbit::gemm_rows8_q4_0<DotAvx2>(p); }
void gemm_rows8_q4_1(const GemmArgs& p) { lowbit::gemm_rows8_q4_1<DotAvx2>(p); }
void gemm_rows8_q8_0(const GemmArgs& p) { lowbit::gemm_rows8_q8_0<DotAvx2>(p); }
void unpack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k) { lowbit::unpack_rows8_simd(t, src, dst, n, k); }

}  // namespace lowbit::avx2
