// The NEON matmul kernels of one dot policy, registered into a kernel table: included by
// table_neon.cpp (DotNeon, every AArch64 CPU) and table_neon_dotprod.cpp (DotNeonDotprod, +dotprod).
#pragma once
#include "../../core/kernels.h"
#include "matmul_ggml_order_neon.h"
#include "matmul_rows8_neon.h"

namespace lowbit {
namespace {

template <class D>
void register_neon_matmul(KernelTable& t) {
    auto slot = [&](QType q) -> TypeKernels& { return t.types[static_cast<int>(q)]; };
    slot(QType::Q4_0).gemm = neon_gemm_q4_0<D>;
    slot(QType::Q4_1).gemm = neon_gemm_vec_dot<D, NoQ4_1>;
    slot(QType::Q8_0).gemm = neon_gemm_vec_dot<D, NoQ8_0>;
    slot(QType::Q4_0).gemm_rows8 = neon_rows8_q4_0<D>;
    slot(QType::Q4_1).gemm_rows8 = neon_rows8_lanes<D, false>;
    slot(QType::Q8_0).gemm_rows8 = neon_rows8_lanes<D, true>;
    slot(QType::Q4_K).gemm_rows8 = neon_rows8_q45_k<D, false>;
    slot(QType::Q5_K).gemm_rows8 = neon_rows8_q45_k<D, true>;
    slot(QType::IQ4_XS).gemm_rows8 = neon_rows8_iq4_xs<D>;
}

}  // namespace
}  // namespace lowbit
