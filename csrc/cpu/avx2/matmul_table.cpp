// Registers the AVX2 matmul kernels: each type's gemm slot picks streaming (few rows) or panels.
#include "../../core/kernels.h"
#include "matmul_avx2.h"

namespace lowbit {

void register_matmul_avx2(KernelTable& t) {
    auto set = [&](QType q, gemm_fn f) { t.types[static_cast<int>(q)].gemm = f; };
    set(QType::Q4_0, avx2::gemm_panels_q4_0);
    set(QType::Q4_1, avx2::gemm_panels_q4_1);
    set(QType::Q5_0, avx2::gemm_panels_q5_0);
    set(QType::Q5_1, avx2::gemm_panels_q5_1);
    set(QType::Q8_0, avx2::gemm_panels_q8_0);
    set(QType::IQ4_NL, avx2::gemm_panels_iq4_nl);
    set(QType::Q2_K, avx2::gemm_panels_q2_k);
    set(QType::Q3_K, avx2::gemm_panels_q3_k);
    set(QType::Q4_K, avx2::gemm_panels_q4_k);
    set(QType::Q5_K, avx2::gemm_panels_q5_k);
    set(QType::Q6_K, avx2::gemm_panels_q6_k);
    set(QType::IQ4_XS, avx2::gemm_panels_iq4_xs);
}

}  // namespace lowbit
