// The AVX-512 matmul kernels, shared between the files of csrc/cpu/avx512/matmul_*.cpp.
#pragma once
#include "../../core/kernels.h"

namespace lowbit::avx512 {

// f32 / f16 / bf16 on zmm (matmul_float.cpp): AVX-512F only.
void register_float(KernelTable& t);

// VNNI (matmul_gemm_vnni.cpp): registers the kernels it has, returns false where they were not compiled
// (compiler without -mavx512vnni). Call only when the CPU reports avx512vnni.
bool register_vnni(KernelTable& t);
// BF16 (matmul_float_bf16.cpp): the bf16 kernel, vdpbf16ps. Call only when the CPU reports avx512bf16.
bool register_bf16(KernelTable& t);

// Few rows, VNNI on 256-bit vectors (matmul_gemv_vnni.cpp; defined only where VNNI is compiled).
#define LOWBIT_AVX512_GEMV(t) void gemv_##t(const GemmArgs& p);
void gemm_ggml_order_q4_0(const GemmArgs& p);
void gemm_ggml_order_q4_1(const GemmArgs& p);  // ggml's summation order, every m (../avx2/matmul_ggml_order.h)
void gemm_ggml_order_q8_0(const GemmArgs& p);
void gemm_rows8_q4_0(const GemmArgs& p);  // the rows8 layout (matmul_rows8_vnni.cpp)
void gemm_rows8_q4_1(const GemmArgs& p);
void gemm_rows8_q8_0(const GemmArgs& p);
void gemm_rows8_q4_k(const GemmArgs& p);
void gemm_rows8_q5_k(const GemmArgs& p);
void gemm_rows8_iq4_xs(const GemmArgs& p);
LOWBIT_AVX512_GEMV(q5_0)
LOWBIT_AVX512_GEMV(q5_1)
LOWBIT_AVX512_GEMV(iq4_nl)
LOWBIT_AVX512_GEMV(q2_k)
LOWBIT_AVX512_GEMV(q3_k)
LOWBIT_AVX512_GEMV(q4_k)
LOWBIT_AVX512_GEMV(q5_k)
LOWBIT_AVX512_GEMV(q6_k)
LOWBIT_AVX512_GEMV(iq4_xs)
#undef LOWBIT_AVX512_GEMV

}  // namespace lowbit::avx512
