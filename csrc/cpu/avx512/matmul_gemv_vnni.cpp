// The AVX-512 VNNI instances of the few-row kernels (../avx2/matmul_gemv_*.h), 256-bit vectors: on
// the 32-blocks vpdpbusd replaces maddubs + madd (and the sign trick of q8_0 / iq4_nl), on the
// 256-blocks vpdpwssd fuses the scale madd with the accumulation.
#include "matmul_avx512.h"

#if defined(__AVX512VNNI__)
#include "../avx2/matmul_gemv_k.h"
#include "../avx2/matmul_gemv_legacy.h"
#include "../avx2/matmul_ggml_order.h"

namespace lowbit::avx512 {

void gemv_q5_0(const GemmArgs& p) { gemv<DotVnni, GvQ5_0>(p); }
void gemv_q5_1(const GemmArgs& p) { gemv<DotVnni, GvQ5_1>(p); }
void gemv_iq4_nl(const GemmArgs& p) { gemv<DotVnni, GvIQ4_NL>(p); }
void gemm_ggml_order_q4_0(const GemmArgs& p) { gemm_ggml_order_q4_0_any<DotVnni>(p); }
void gemm_ggml_order_q4_1(const GemmArgs& p) { gemm_ggml_order<DotVnni, GoQ4_1>(p); }
void gemm_ggml_order_q8_0(const GemmArgs& p) { gemm_ggml_order<DotVnni, GoQ8_0>(p); }
void gemv_q2_k(const GemmArgs& p) { gemv_k<SbQ2K<DotVnni>>(p); }
void gemv_q3_k(const GemmArgs& p) { gemv_k<SbQ3K<DotVnni>>(p); }
void gemv_q4_k(const GemmArgs& p) { gemv_k<SbQ4K<DotVnni>>(p); }
void gemv_q5_k(const GemmArgs& p) { gemv_k<SbQ5K<DotVnni>>(p); }
void gemv_q6_k(const GemmArgs& p) { gemv_k<SbQ6K<DotVnni>>(p); }
void gemv_iq4_xs(const GemmArgs& p) { gemv_k<SbIQ4XS<DotVnni>>(p); }

}  // namespace lowbit::avx512

#endif
