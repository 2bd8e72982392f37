// The AVX2 matmul kernels, shared between the files of csrc/cpu/avx2/matmul_*.cpp.
#pragma once
#include "../../core/kernels.h"

namespace lowbit::avx2 {

// Many rows: unpack weight panels once, reuse them for every activation row (matmul_gemm.cpp).
#define LOWBIT_AVX2_GEMM(t) void gemm_panels_##t(const GemmArgs& p);
LOWBIT_AVX2_GEMM(q5_0)
LOWBIT_AVX2_GEMM(q5_1)
LOWBIT_AVX2_GEMM(iq4_nl)
LOWBIT_AVX2_GEMM(q2_k)
LOWBIT_AVX2_GEMM(q3_k)
LOWBIT_AVX2_GEMM(q4_k)
LOWBIT_AVX2_GEMM(q5_k)
LOWBIT_AVX2_GEMM(q6_k)
LOWBIT_AVX2_GEMM(iq4_xs)
#undef LOWBIT_AVX2_GEMM

// Few rows: stream each weight block once past every activation row (matmul_gemv_*.cpp).
#define LOWBIT_AVX2_GEMV(t) void gemv_##t(const GemmArgs& p);
LOWBIT_AVX2_GEMV(q5_0)
LOWBIT_AVX2_GEMV(q5_1)
LOWBIT_AVX2_GEMV(iq4_nl)
LOWBIT_AVX2_GEMV(q2_k)
LOWBIT_AVX2_GEMV(q3_k)
LOWBIT_AVX2_GEMV(q4_k)
LOWBIT_AVX2_GEMV(q5_k)
LOWBIT_AVX2_GEMV(q6_k)
LOWBIT_AVX2_GEMV(iq4_xs)
#undef LOWBIT_AVX2_GEMV

// q4_0 / q4_1 / q8_0, every m, in ggml's summation order (matmul_ggml_order.h, instances in matmul_ggml_order.cpp).
void gemm_ggml_order_q4_0(const GemmArgs& p);
void gemm_ggml_order_q4_1(const GemmArgs& p);
void gemm_ggml_order_q8_0(const GemmArgs& p);

// q4_0 / q4_1 on the rows8 layout, the same bits (matmul_rows8.h, instances in matmul_rows8.cpp).
void gemm_rows8_q4_0(const GemmArgs& p);
void gemm_rows8_q4_1(const GemmArgs& p);
void gemm_rows8_q8_0(const GemmArgs& p);
// rows8 -> row-major with 8 x 8 transposes (the unpacking fallback's copy; unpack_rows8's bytes)
void unpack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k);
void gemm_rows8_q4_k(const GemmArgs& p);
void gemm_rows8_q5_k(const GemmArgs& p);
void gemm_rows8_iq4_xs(const GemmArgs& p);

// matmul's activation quantization, with the a_ds pairs (matmul_act.cpp).
bool quantize_act_q8_0(const float* x, void* y, float* ds, int64_t k);
bool quantize_act_q8_1(const float* x, void* y, float* ds, int64_t k);

// Float weights, every m (matmul_float.cpp).
void gemm_f32(const GemmArgs& p);
void gemm_f16(const GemmArgs& p);
void gemm_bf16(const GemmArgs& p);

}  // namespace lowbit::avx2
