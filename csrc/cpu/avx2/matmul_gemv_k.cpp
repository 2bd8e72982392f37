// The AVX2 instances of the few-row kernels of the 256-blocks (matmul_gemv_k.h).
#include "matmul_avx2.h"
#include "matmul_gemv_k.h"

namespace lowbit::avx2 {

void gemv_q2_k(const GemmArgs& p) { gemv_k<SbQ2K<DotAvx2>>(p); }
void gemv_q3_k(const GemmArgs& p) { gemv_k<SbQ3K<DotAvx2>>(p); }
void gemv_q4_k(const GemmArgs& p) { gemv_k<SbQ4K<DotAvx2>>(p); }
void gemv_q5_k(const GemmArgs& p) { gemv_k<SbQ5K<DotAvx2>>(p); }
void gemv_q6_k(const GemmArgs& p) { gemv_k<SbQ6K<DotAvx2>>(p); }
void gemv_iq4_xs(const GemmArgs& p) { gemv_k<SbIQ4XS<DotAvx2>>(p); }

}  // namespace lowbit::avx2
