// The AVX2 instances of the few-row kernels of the 32-blocks (matmul_gemv_legacy.h).
#include "matmul_avx2.h"
#include "matmul_gemv_legacy.h"

namespace lowbit::avx2 {

void gemv_q5_0(const GemmArgs& p) { gemv<DotAvx2, GvQ5_0>(p); }
void gemv_q5_1(const GemmArgs& p) { gemv<DotAvx2, GvQ5_1>(p); }
void gemv_iq4_nl(const GemmArgs& p) { gemv<DotAvx2, GvIQ4_NL>(p); }

}  // namespace lowbit::avx2
