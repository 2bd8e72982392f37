// Matmul of q4_1 and q8_0 weights in ggml's summation order, so lowbit's products are llama.cpp's bit
// for bit (tested against ggml's mul_mat), which makes a model's logits identical to llama.cpp's.
//
// ggml's x86 dot (ggml_vec_dot_q4_1_q8_1 / ggml_vec_dot_q8_0_q8_0 with AVX2, and llamafile's tinyBLAS
// for q8_0: the same arithmetic) gives every output 8 float lanes; lane l takes, block after block, the
// block's integer sum of the 4 products at bytes 4l..4l+3 (exact in int32), converted to float, times
// d_w * d_a (an exact f32 product of two halves), added with one fused multiply-add. The lanes are then
// summed pairwise (hi + lo, then 0 + 2 and 1 + 3, then 0 + 1), and for q4_1 a float sum of the blocks'
// m_w * s_a, taken block by block, is added last. lowbit's other 32-block kernels fold offsets and mins
// into the lanes and split the blocks over several accumulators, which is faster and equally accurate
// but rounds differently.
//
// Tiles of RW weight rows x MA activation rows share each load: per block and row pair one integer dot
// (maddubs + madd on AVX2, vpdpbusd with VNNI), one conversion, one FMA. Compiled by the AVX2 and the
// AVX-512 VNNI files with their dot policy D.
#pragma once
#include <algorithm>

#include "../../core/blocks.h"
#include "../../core/fp16.h"
#include "../../core/kernels.h"
#include "matmul_dot.h"
#include "matmul_simd.h"

namespace lowbit {
namespace {

struct GoQ4_1 {
    using W = block_q4_1;
    using A = block_q8_1;
    static constexpr bool kSigned = false, kMin = true;
    static __m256i levels(const W& b) { return nibbles32(b.qs); }  // low nibbles = values 0-15, high 16-31
};
struct GoQ8_0 {
    using W = block_q8_0;
    using A = block_q8_0;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const W& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};

template <class D, class T, int RW, int MA>
void ggml_order_tile(const GemmArgs& p, int64_t j, int64_t i0) {
    const int64_t nb = p.k / 32;
    const typename T::W* w[RW];
    const typename T::A* a[MA];
    const float* ds[MA];  // {d_a, s_a} per block
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        w[r] = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + (j + r) * p.w_row_bytes);
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        a[i] = reinterpret_cast<const typename T::A*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
        ds[i] = p.a_ds + (i0 + i) * nb * 2;
    }
    __m256 acc[RW][MA];
    float summs[RW][MA];
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            acc[r][i] = _mm256_setzero_ps();
            summs[r][i] = 0.0f;
        }
    for (int64_t b = 0; b < nb; ++b) {
        __m256i av[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
            av[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i][b].qs));
        LOWBIT_UNROLL for (int r = 0; r < RW; ++r) {
            const auto& blk = w[r][b];
            const __m256i q = T::levels(blk);
            const __m256i qabs = T::kSigned ? _mm256_sign_epi8(q, q) : q;
            const float dw = f16_to_f32(blk.d);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const __m256i prod = D::dot4(qabs, T::kSigned ? _mm256_sign_epi8(av[i], q) : av[i]);
                acc[r][i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ds[i][2 * b]), _mm256_cvtepi32_ps(prod), acc[r][i]);
                if constexpr (T::kMin) summs[r][i] += f16_to_f32(blk.m) * ds[i][2 * b + 1];
            }
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j + r] = hsum_ps(acc[r][i]) + summs[r][i];
}

// Weight rows in chunks that stay in L2 while the activation rows pass over them, 4 at a time.
template <class D, class T>
void gemm_ggml_order(const GemmArgs& p) {
    constexpr int64_t kChunk = 64;
    constexpr int RW = 2;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4) {
            const int64_t ma = std::min<int64_t>(4, p.m - i0);
            int64_t j = j0;
            for (; j + RW <= j1; j += RW) switch (ma) {
                    case 1: ggml_order_tile<D, T, RW, 1>(p, j, i0); break;
                    case 2: ggml_order_tile<D, T, RW, 2>(p, j, i0); break;
                    case 3: ggml_order_tile<D, T, RW, 3>(p, j, i0); break;
                    default: ggml_order_tile<D, T, RW, 4>(p, j, i0); break;
                }
            for (; j < j1; ++j) switch (ma) {
                    case 1: ggml_order_tile<D, T, 1, 1>(p, j, i0); break;
                    case 2: ggml_order_tile<D, T, 1, 2>(p, j, i0); break;
                    case 3: ggml_order_tile<D, T, 1, 3>(p, j, i0); break;
                    default: ggml_order_tile<D, T, 1, 4>(p, j, i0); break;
                }
        }
    }
}

}  // namespace
}  // namespace lowbit
