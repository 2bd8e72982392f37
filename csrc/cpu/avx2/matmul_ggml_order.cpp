// The AVX2 instances of the ggml-order kernels (matmul_ggml_order.h).
#include "matmul_avx2.h"
#include "matmul_ggml_order.h"

namespace lowbit::avx2 {

void gemm_ggml_order_q4_0(const GemmArgs& p) { gemm_ggml_order_q4_0_any<DotAvx2>(p); }
void gemm_ggml_order_q4_1(const GemmArgs& p) { gemm_ggml_order<DotAvx2, GoQ4_1>(p); }
void gemm_ggml_order_q8_0(const GemmArgs& p) { gemm_ggml_order<DotAvx2, GoQ8_0>(p); }

}  // namespace lowbit::avx2
