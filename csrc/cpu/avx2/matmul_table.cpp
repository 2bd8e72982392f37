// Registers the AVX2 matmul kernels: each type's gemm slot streams the weights for a few rows and
// unpacks them into panels for many.
#include "../../core/kernels.h"
#include "../../core/rows8.h"
#include "matmul_avx2.h"

namespace lowbit {

namespace {

// Below this many rows streaming beats unpacking panels (measured at n = k = 4096 on Zen 4: the
// streaming kernels of the 256-blocks are the more efficient, so they keep a row more).
constexpr int64_t kPanelRows32 = 6, kPanelRows256 = 8;

template <gemm_fn Gemv, gemm_fn Panels, int64_t kPanelRows = kPanelRows32>
void gemm_by_rows(const GemmArgs& p) {
    if (p.m < kPanelRows)
        Gemv(p);
    else
        Panels(p);
}

// rows8 K-quants: their own kernel for up to 15 rows of x, the row-major panels on unpacked rows from 16
// on (the panels reuse unpacked weights across rows of x, which the rows8 tiles do not: ~1.3x faster
// there than the tiles even after the copy; the crossover measured at n = k = 4096).
template <gemm_fn Rows8, gemm_fn RowMajor, QType T>
void rows8_by_rows(const GemmArgs& p) {
    if (p.m < 16)
        Rows8(p);
    else
        gemm_rows8_unpacked(p, T, RowMajor, avx2::unpack_rows8);
}

}  // namespace

void register_matmul_avx2(KernelTable& t) {
    auto set = [&](QType q, gemm_fn f) { t.types[static_cast<int>(q)].gemm = f; };
    t.types[static_cast<int>(QType::Q8_0)].quantize_act = avx2::quantize_act_q8_0;
    t.types[static_cast<int>(QType::Q8_1)].quantize_act = avx2::quantize_act_q8_1;
    set(QType::F32, avx2::gemm_f32);
    set(QType::F16, avx2::gemm_f16);
    set(QType::BF16, avx2::gemm_bf16);
    set(QType::Q4_0, avx2::gemm_ggml_order_q4_0);
    set(QType::Q4_1, avx2::gemm_ggml_order_q4_1);  // llama.cpp's bits (matmul_ggml_order.h)
    set(QType::Q5_0, gemm_by_rows<avx2::gemv_q5_0, avx2::gemm_panels_q5_0>);
    set(QType::Q5_1, gemm_by_rows<avx2::gemv_q5_1, avx2::gemm_panels_q5_1>);
    set(QType::Q8_0, avx2::gemm_ggml_order_q8_0);
    t.types[static_cast<int>(QType::Q4_0)].gemm_rows8 = avx2::gemm_rows8_q4_0;
    t.types[static_cast<int>(QType::Q4_1)].gemm_rows8 = avx2::gemm_rows8_q4_1;
    t.types[static_cast<int>(QType::Q8_0)].gemm_rows8 = avx2::gemm_rows8_q8_0;
    t.types[static_cast<int>(QType::Q4_K)].gemm_rows8 =
        rows8_by_rows<avx2::gemm_rows8_q4_k, gemm_by_rows<avx2::gemv_q4_k, avx2::gemm_panels_q4_k, kPanelRows256>, QType::Q4_K>;
    t.types[static_cast<int>(QType::Q5_K)].gemm_rows8 =
        rows8_by_rows<avx2::gemm_rows8_q5_k, gemm_by_rows<avx2::gemv_q5_k, avx2::gemm_panels_q5_k, kPanelRows256>, QType::Q5_K>;
    t.types[static_cast<int>(QType::IQ4_XS)].gemm_rows8 =
        rows8_by_rows<avx2::gemm_rows8_iq4_xs, gemm_by_rows<avx2::gemv_iq4_xs, avx2::gemm_panels_iq4_xs, kPanelRows256>, QType::IQ4_XS>;
    set(QType::IQ4_NL, gemm_by_rows<avx2::gemv_iq4_nl, avx2::gemm_panels_iq4_nl>);
    set(QType::Q2_K, gemm_by_rows<avx2::gemv_q2_k, avx2::gemm_panels_q2_k, kPanelRows256>);
    set(QType::Q3_K, gemm_by_rows<avx2::gemv_q3_k, avx2::gemm_panels_q3_k, kPanelRows256>);
    set(QType::Q4_K, gemm_by_rows<avx2::gemv_q4_k, avx2::gemm_panels_q4_k, kPanelRows256>);
    set(QType::Q5_K, gemm_by_rows<avx2::gemv_q5_k, avx2::gemm_panels_q5_k, kPanelRows256>);
    set(QType::Q6_K, gemm_by_rows<avx2::gemv_q6_k, avx2::gemm_panels_q6_k, kPanelRows256>);
    set(QType::IQ4_XS, gemm_by_rows<avx2::gemv_iq4_xs, avx2::gemm_panels_iq4_xs, kPanelRows256>);
}

}  // namespace lowbit
