// q4_0 / q4_1 / q8_0 matmul on GGUF's rows with NEON, in the orders of ../avx2/matmul_ggml_order.h
// (llama.cpp's x86 orders, stated in numpy by tests/test_ggml_order.py), so every ISA gives the same bits:
//   vec_dot order (q4_1, q8_0, q4_0 on matrices whose rows are not a multiple of 8): 8 float lanes per
//     output, lane l adding block by block fma(d_w * d_a, float(the 4 products at bytes 4l..4l+3 of
//     the 32 levels [low nibbles, high nibbles]), lane), the lanes summed pairwise at the end, then the
//     float sum of q4_1's m_w * s_a (0 for the others) added;
//   repacked order (q4_0, rows a multiple of 8): one accumulator per output, fma(float(the block's
//     integer dot), d_w * d_a, acc).
// NEON's 4-lane registers hold lanes 0-3 (values 0-15) and 4-7 (values 16-31) of an output.
#pragma once
#include <algorithm>
#include <vector>

#include "neon.h"

namespace lowbit {
namespace {

// A 32-block's levels as two signed byte vectors: values 0-15 and 16-31.
struct NeonLevels {
    int8x16_t lo, hi;
};
inline NeonLevels nibble_levels(const uint8_t* qs, int8_t offset) {
    const uint8x16_t q = vld1q_u8(qs);
    const int8x16_t off = vdupq_n_s8(offset);
    return {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), off),
            vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), off)};
}

struct NoQ4_0 {
    using W = block_q4_0;
    using A = block_q8_0;
    static constexpr bool kMin = false;
    static NeonLevels levels(const W& b) { return nibble_levels(b.qs, 8); }
};
struct NoQ4_1 {
    using W = block_q4_1;
    using A = block_q8_1;
    static constexpr bool kMin = true;
    static NeonLevels levels(const W& b) { return nibble_levels(b.qs, 0); }
};
struct NoQ8_0 {
    using W = block_q8_0;
    using A = block_q8_0;
    static constexpr bool kMin = false;
    static NeonLevels levels(const W& b) { return {load_s8(b.qs), load_s8(b.qs + 16)}; }
};


// Weight row j against x rows i0..i0+MA-1, vec_dot order.
template <class D, class T, int MA>
void neon_vec_dot_row(const GemmArgs& p, int64_t j, int64_t i0) {
    const int64_t nb = p.k / 32;
    const auto* w = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes);
    const GemmXRows<typename T::A, MA> x(p, i0);
    float32x4_t lo[MA], hi[MA];
    float summs[MA];
    for (int i = 0; i < MA; ++i) {
        lo[i] = hi[i] = vdupq_n_f32(0.0f);
        summs[i] = 0.0f;
    }
    for (int64_t b = 0; b < nb; ++b) {
        const NeonLevels q = T::levels(w[b]);
        const float dw = f16_1(&w[b].d);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const int32x4_t plo = D::dot4_add(vdupq_n_s32(0), q.lo, load_s8(x.a[i][b].qs));
            const int32x4_t phi = D::dot4_add(vdupq_n_s32(0), q.hi, load_s8(x.a[i][b].qs + 16));
            const float32x4_t dd = vdupq_n_f32(dw * x.ds[i][2 * b]);
            lo[i] = vfmaq_f32(lo[i], vcvtq_f32_s32(plo), dd);
            hi[i] = vfmaq_f32(hi[i], vcvtq_f32_s32(phi), dd);
            if constexpr (T::kMin) summs[i] += f16_1(&w[b].m) * x.ds[i][2 * b + 1];
        }
    }
    for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j] = hsum8(lo[i], hi[i]) + summs[i];
}

// Weight rows j..j+3 against x rows i0..i0+MA-1, q4_0's repacked order (lane r = row j + r).
template <class D, int MA>
void neon_q4_0_repacked_rows4(const GemmArgs& p, int64_t j, int64_t i0) {
    const int64_t nb = p.k / 32;
    const block_q4_0* w[4];
    for (int r = 0; r < 4; ++r)
        w[r] = reinterpret_cast<const block_q4_0*>(static_cast<const uint8_t*>(p.w) + (j + r) * p.w_row_bytes);
    const GemmXRows<block_q8_0, MA> x(p, i0);
    float32x4_t acc[MA];
    for (int i = 0; i < MA; ++i) acc[i] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; ++b) {
        NeonLevels q[4];
        uint16_t h[4];
        for (int r = 0; r < 4; ++r) {
            q[r] = nibble_levels(w[r][b].qs, 8);
            std::memcpy(&h[r], &w[r][b].d, 2);
        }
        const float32x4_t dw = f16x4(h);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const int8x16_t xa = load_s8(x.a[i][b].qs), xb = load_s8(x.a[i][b].qs + 16);
            int32x4_t s[4];
            for (int r = 0; r < 4; ++r) s[r] = D::dot4_add(D::dot4_add(vdupq_n_s32(0), q[r].lo, xa), q[r].hi, xb);
            const int32x4_t isum = vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));  // exact
            acc[i] = vfmaq_f32(acc[i], vcvtq_f32_s32(isum), vmulq_n_f32(dw, x.ds[i][2 * b]));
        }
    }
    for (int i = 0; i < MA; ++i) {
        float out[4];
        vst1q_f32(out, acc[i]);
        for (int r = 0; r < 4; ++r) p.c[(i0 + i) * p.ldc + j + r] = out[r];
    }
}

// x rows in passes of up to 4, each over a chunk of weight rows that stays in L1 / L2.
template <class Row1, class Row2, class Row3, class Row4>
void neon_by_chunks(const GemmArgs& p, int64_t step, Row1 r1, Row2 r2, Row3 r3, Row4 r4) {
    constexpr int64_t kChunk = 64;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4)
            for (int64_t j = j0; j < j1; j += step) switch (std::min<int64_t>(4, p.m - i0)) {
                    case 1: r1(j, i0); break;
                    case 2: r2(j, i0); break;
                    case 3: r3(j, i0); break;
                    default: r4(j, i0); break;
                }
    }
}

template <class D, class T>
void neon_gemm_vec_dot(const GemmArgs& p) {
    neon_by_chunks(p, 1, [&](int64_t j, int64_t i0) { neon_vec_dot_row<D, T, 1>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_vec_dot_row<D, T, 2>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_vec_dot_row<D, T, 3>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_vec_dot_row<D, T, 4>(p, j, i0); });
}

// q4_0: the repacked order where llama.cpp repacks (rows of the whole matrix and of the slice a multiple
// of 8, as on x86), vec_dot's elsewhere.
template <class D>
void neon_gemm_q4_0(const GemmArgs& p) {
    if (!(p.n_all % 8 == 0 && p.n % 8 == 0)) return neon_gemm_vec_dot<D, NoQ4_0>(p);
    neon_by_chunks(p, 4, [&](int64_t j, int64_t i0) { neon_q4_0_repacked_rows4<D, 1>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_q4_0_repacked_rows4<D, 2>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_q4_0_repacked_rows4<D, 3>(p, j, i0); },
                   [&](int64_t j, int64_t i0) { neon_q4_0_repacked_rows4<D, 4>(p, j, i0); });
}

}  // namespace
}  // namespace lowbit
