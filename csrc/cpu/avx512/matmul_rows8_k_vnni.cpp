// The AVX-512 VNNI instances of the K-quant rows8 kernels (../avx2/matmul_rows8_k.h), in a unit of their
// own for the reason given in ../avx2/matmul_rows8_k.cpp.
#include "matmul_avx512.h"

#if defined(__AVX512VNNI__)
#include "../avx2/matmul_rows8_k.h"

namespace lowbit::avx512 {

void gemm_rows8_q4_k(const GemmArgs& p) { lowbit::gemm_rows8_q45_k<DotVnni, false>(p); }
void gemm_rows8_q5_k(const GemmArgs& p) { lowbit::gemm_rows8_q45_k<DotVnni, true>(p); }
void gemm_rows8_iq4_xs(const GemmArgs& p) { lowbit::gemm_rows8_iq4_xs<DotVnni>(p); }

}  // namespace lowbit::avx512

#endif
