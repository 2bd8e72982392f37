// The AVX-512 VNNI instances of the rows8 kernels (../avx2/matmul_rows8.h): vpdpbusd on 256-bit
// vectors, and AVX-512's 32 registers let a decode tile take more rows of x.
#include "matmul_avx512.h"

#if defined(__AVX512VNNI__)
#include "../avx2/matmul_rows8.h"

namespace lowbit::avx512 {

void gemm_rows8_q4_0(const GemmArgs& p) { lowbit::gemm_rows8_q4_0<DotVnni>(p); }
void gemm_rows8_q4_1(const GemmArgs& p) { lowbit::gemm_rows8_q4_1<DotVnni>(p); }
void gemm_rows8_q8_0(const GemmArgs& p) { lowbit::gemm_rows8_q8_0<DotVnni>(p); }

}  // namespace lowbit::avx512

#endif
