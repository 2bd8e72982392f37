// SIMD K-quant quantizers (q2_K .. q6_K, with and without importance weights), written once over a
// vector vocabulary V (VecAvx2, VecAvx512, or VecX2 pairs of them) and bit-identical to the scalar
// reference (csrc/ref/q*_k.cpp), which they follow step by step.
//
// The expensive part, the per-sub-block scale search, runs lane-parallel across sub-blocks
// (kquant_search_simd.h): lane g = sub-block g of a batch of V::N consecutive sub-blocks (a batch
// may span several super-blocks: 32 lanes hold four q4_K super-blocks). The per-super-block rest
// is either cheap scalar code copied from the reference (scale quantization, make_qp_quants) or
// elementwise (requantizing each value against the stored scales, packing), which is vectorized
// along the values: elementwise operations reorder nothing.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/blocks.h"
#include "../core/fp16.h"
#include "../ref/kquant_pack.h"
#include "../ref/quant_search.h"
#include "kquant_search_simd.h"

namespace lowbit::simd {
namespace {

// Level i of group `group` of a chunk, as the search left it (batches of N groups, transposed).
template <int N, int n>
struct SearchLevels {
    const uint8_t* Lt;
    uint8_t at(int group, int i) const { return Lt[(group / N) * n * N + i * N + group % N]; }
    void copy(int group, uint8_t* L) const {
        for (int i = 0; i < n; ++i) L[i] = at(group, i);
    }
};

// One chunk's search results: SB super-blocks = G*SB groups of n values.
template <class V, int n>
struct Chunk {
    static constexpr int N = V::N, G = QK_K / n;
    static constexpr int SB = N >= G ? N / G : 1;  // super-blocks per chunk
    static constexpr int NB = SB * G / N;          // batches of N groups per chunk
    alignas(64) float scales[SB * G], mins[SB * G], sw[SB * G];
    alignas(64) uint8_t Lt[NB * n * N];
    SearchLevels<N, n> levels() const { return {Lt}; }
};

// Per-lane inputs of one batch: transposed values and importance weights, and the sum of squares
// of the super-block each lane belongs to (the imatrix paths derive sigma2 from it).
template <class V, int n>
struct Batch {
    alignas(64) float xt[n * V::N], qt[n * V::N], wt[n * V::N];
    bool weighted = false;
    typename V::F ss;
};

template <int N, int n>
void transpose(const float* x, float* xt) {
    for (int g = 0; g < N; ++g) {
        for (int i = 0; i < n; ++i) xt[i * N + g] = x[n * g + i];
    }
}

// Importance weights of the imatrix paths, qw * sqrt(sigma2 + x^2), and their per-group sums
// (summed from 0 in value order, as the reference's sumw loop).
template <class V, int n>
void imatrix_weights(Batch<V, n>& b, typename V::F sigma2, float* sw) {
    constexpr int N = V::N;
    auto sum = V::zero();
    for (int i = 0; i < n; ++i) {
        const auto x = V::load(b.xt + i * N);
        const auto w = V::mul(V::load(b.qt + i * N), V::sqrt(V::add(sigma2, V::mul(x, x))));
        V::store(b.wt + i * N, w);
        sum = V::add(sum, w);
    }
    V::store(sw, sum);
}

// Runs `search(batch, chunk, b)` on every batch of a chunk of super-blocks, then
// `finish(x, qw, chunk, first_group, y)` on each super-block. A last chunk that the row does not
// fill (only when one batch spans several super-blocks) is padded with zeros, and the padding's
// results are dropped.
template <class V, int n, bool kNeedSumSquares, class Block, class Search, class Finish>
void quantize_row_chunked(const float* x, const float* qw, Block* y, int64_t nb, Search search, Finish finish) {
    using C = Chunk<V, n>;
    constexpr int N = V::N;
    C chunk;
    Batch<V, n> batch;
    batch.weighted = qw != nullptr;
    alignas(64) float xpad[C::SB * QK_K], qpad[C::SB * QK_K], ss[N], ss_sb[C::SB] = {};
    for (int64_t ib = 0; ib < nb; ib += C::SB) {
        const int nsb = static_cast<int>(std::min<int64_t>(C::SB, nb - ib));
        const float* xc = x + ib * QK_K;
        const float* qc = qw ? qw + ib * QK_K : nullptr;
        if (nsb < C::SB) {
            std::memset(xpad, 0, sizeof(xpad));
            std::memcpy(xpad, xc, sizeof(float) * QK_K * nsb);
            xc = xpad;
            if (qc) {
                std::memset(qpad, 0, sizeof(qpad));
                std::memcpy(qpad, qc, sizeof(float) * QK_K * nsb);
                qc = qpad;
            }
        }
        if (qc && kNeedSumSquares) {
            for (int s = 0; s < C::SB; ++s) ss_sb[s] = ref::sum_squares(xc + s * QK_K, QK_K);
        }
        for (int b = 0; b < C::NB; ++b) {
            transpose<N, n>(xc + b * N * n, batch.xt);
            if (qc) {
                transpose<N, n>(qc + b * N * n, batch.qt);
                if (kNeedSumSquares) {
                    for (int g = 0; g < N; ++g) ss[g] = ss_sb[(b * N + g) / C::G];
                    batch.ss = V::load(ss);
                }
            }
            search(batch, chunk, b);
        }
        for (int s = 0; s < nsb; ++s) finish(xc + s * QK_K, qc ? qc + s * QK_K : nullptr, chunk, s * C::G, y + ib + s);
    }
}

// Runs `run(vec, x, qw, first_block, count)` with the vocabulary V on the super-blocks that fill
// whole chunks, and with the narrower V::Base on the rest, so that a row's tail pads less.
template <class V, int n, class Run>
void split_row(const float* x, const float* qw, int64_t nb, Run run) {
    constexpr int SB = Chunk<V, n>::SB;
    const int64_t bulk = nb / SB * SB;
    if (bulk > 0) run(V{}, x, qw, 0, bulk);
    if (bulk < nb) run(typename V::Base{}, x + bulk * QK_K, qw ? qw + bulk * QK_K : nullptr, bulk, nb - bulk);
}

// Levels of n values against a stored scale d (and min dm): clamp(round((x + dm) / d), lo, hi) +
// bias, elementwise, exactly as the reference's requantization loops.
template <class V, int n, bool kWithMin>
void requantize_group(const float* x, float d, float dm, int lo, int hi, int bias, uint8_t* L) {
    const auto vd = V::set1(d), vdm = V::set1(dm);
    for (int i = 0; i < n; i += V::N) {
        auto v = V::load(x + i);
        if (kWithMin) v = V::add(v, vdm);
        V::store_u8(L + i, V::iadd(V::clamp(V::nearest_int(V::div(v, vd)), lo, hi), V::iset1(bias)));
    }
}

// ---- q4_K / q5_K -------------------------------------------------------------------------------

template <class V, int kNmax>
void search_q45_k(Batch<V, 32>& b, Chunk<V, 32>& c, int ib) {
    constexpr int N = V::N, n = 32;
    constexpr bool kQ5 = kNmax == 31;
    float* scales = c.scales + ib * N;
    float* mins = c.mins + ib * N;
    uint8_t* Lt = c.Lt + ib * n * N;
    if (!b.weighted) {
        // weights av_x + |x|, av_x the RMS of the sub-block
        auto ss = V::zero();
        for (int i = 0; i < n; ++i) ss = V::add(ss, V::mul(V::load(b.xt + i * N), V::load(b.xt + i * N)));
        const auto av_x = V::sqrt(V::div(ss, V::set1(static_cast<float>(n))));
        for (int i = 0; i < n; ++i) V::store(b.wt + i * N, V::add(av_x, V::abs(V::load(b.xt + i * N))));
        const QkxParams p{kNmax, kQ5 ? -0.5f : -1.f, 0.1f, kQ5 ? 15 : 20, false, false};
        make_qkx_quants_lanes<V, n>(b.xt, b.wt, p, scales, mins, Lt);
    } else {
        const auto sigma2 = V::div(V::mul(V::set1(2.f), b.ss), V::set1(static_cast<float>(QK_K)));
        imatrix_weights<V, n>(b, sigma2, c.sw + ib * N);
        const QkxParams p{kNmax, -0.9f, 0.05f, 36, false, true};
        make_qkx_quants_lanes<V, n>(b.xt, b.wt, p, scales, mins, Lt);
    }
}

// The 6-bit scales and mins, d and dmin of one super-block, as the reference.
template <int kNmax, class Block>
void quantize_scales_q45_k(const float* scales, const float* mins, const float* sw, Block* y) {
    if (!sw) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; ++j) {
            const uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
            const uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
            ref::set_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), y->scales);
        }
        y->d = f32_to_fp16(max_scale / 63.f);
        y->dmin = f32_to_fp16(max_min / 63.f);
        return;
    }
    uint8_t Ls[8], Lm[8];
    const float d_block = ref::make_qp_quants(8, 63, scales, Ls, sw);
    const float m_block = ref::make_qp_quants(8, 63, mins, Lm, sw);
    for (int j = 0; j < 8; ++j) {
        if (kNmax == 31) {  // q5_K clamps the fitted levels to 63; q4_K packs them as they are
            ref::set_scale_min_k4(j, std::min<uint8_t>(63, Ls[j]), std::min<uint8_t>(63, Lm[j]), y->scales);
        } else {
            ref::set_scale_min_k4(j, Ls[j], Lm[j], y->scales);
        }
    }
    y->d = f32_to_fp16(d_block);
    y->dmin = f32_to_fp16(m_block);
}

template <class V, int kNmax, class Block>
void finish_q45_k(const float* x, const float* qw, const Chunk<V, 32>& c, int g0, Block* y) {
    quantize_scales_q45_k<kNmax>(c.scales + g0, c.mins + g0, qw ? c.sw + g0 : nullptr, y);
    alignas(64) uint8_t L[QK_K];
    const float d_all = fp16_to_f32(y->d), m_all = fp16_to_f32(y->dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        ref::get_scale_min_k4(j, y->scales, &sc, &m);
        const float d = d_all * sc;
        if (!d) {
            c.levels().copy(g0 + j, L + 32 * j);  // a zero scale keeps the search's levels
            continue;
        }
        requantize_group<typename V::Base, 32, true>(x + 32 * j, d, m_all * m, 0, kNmax, 0, L + 32 * j);
    }
    for (int c64 = 0; c64 < QK_K / 64; ++c64) {
        for (int l = 0; l < 32; ++l) {
            y->qs[32 * c64 + l] = static_cast<uint8_t>((L[64 * c64 + l] & 0xF) | ((L[64 * c64 + l + 32] & 0xF) << 4));
        }
    }
    if constexpr (kNmax == 31) {
        for (int l = 0; l < 32; ++l) {
            unsigned h = 0;  // bit 4 of value 32*j + l goes to bit j of qh[l]
            for (int j = 0; j < 8; ++j) h |= ((L[32 * j + l] >> 4) & 1u) << j;
            y->qh[l] = static_cast<uint8_t>(h);
        }
    }
}

template <class V, int kNmax, class Block>
void quantize_row_q45_k(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<Block*>(vy);
    split_row<V, 32>(x, qw, k / QK_K, [y](auto vec, const float* xs, const float* qs, int64_t i0, int64_t nbs) {
        using W = decltype(vec);
        quantize_row_chunked<W, 32, true>(xs, qs, y + i0, nbs, search_q45_k<W, kNmax>, finish_q45_k<W, kNmax, Block>);
    });
}

// ---- q6_K --------------------------------------------------------------------------------------

template <class V>
void search_q6_k(Batch<V, 16>& b, Chunk<V, 16>& c, int ib) {
    // ggml's q6_K uses the importance weights as they are (no sigma2), x^2 without them
    make_qx_quants_lanes<V, 16>(b.xt, b.weighted ? b.qt : nullptr, 32, c.scales + ib * V::N, c.Lt + ib * 16 * V::N);
}

template <class V>
void finish_q6_k(const float* x, const float*, const Chunk<V, 16>& c, int g0, block_q6_K* y) {
    const float* scales = c.scales + g0;
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; ++j) {
        const float a = std::fabs(scales[j]);
        if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[j]; }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(y, 0, sizeof(*y));
        y->d = f32_to_fp16(0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = f32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) y->scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    alignas(64) uint8_t L[QK_K];
    const float d_all = fp16_to_f32(y->d);
    for (int j = 0; j < 16; ++j) {
        const float d = d_all * y->scales[j];
        if (!d) {
            c.levels().copy(g0 + j, L + 16 * j);  // a zero scale keeps the search's levels
            continue;
        }
        requantize_group<typename V::Base, 16, false>(x + 16 * j, d, 0.f, -32, 31, 32, L + 16 * j);
    }
    for (int h = 0; h < QK_K / 128; ++h) {
        const uint8_t* Lh = L + 128 * h;
        for (int l = 0; l < 32; ++l) {
            y->ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
            y->ql[64 * h + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
            y->qh[32 * h + l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                                     ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
        }
    }
}

template <class V>
void quantize_row_q6_k(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<block_q6_K*>(vy);
    split_row<V, 16>(x, qw, k / QK_K, [y](auto vec, const float* xs, const float* qs, int64_t i0, int64_t nbs) {
        using W = decltype(vec);
        quantize_row_chunked<W, 16, false>(xs, qs, y + i0, nbs, search_q6_k<W>, finish_q6_k<W>);
    });
}

// ---- q2_K --------------------------------------------------------------------------------------

template <class V>
void search_q2_k(Batch<V, 16>& b, Chunk<V, 16>& c, int ib) {
    constexpr int N = V::N, n = 16;
    if (!b.weighted) {
        for (int i = 0; i < n; ++i) V::store(b.wt + i * N, V::abs(V::load(b.xt + i * N)));  // weights |x|
        const QkxParams p{3, -0.5f, 0.1f, 15, true, false};
        make_qkx_quants_lanes<V, n>(b.xt, b.wt, p, c.scales + ib * N, c.mins + ib * N, c.Lt + ib * n * N);
    } else {
        const auto sigma2 = V::div(b.ss, V::set1(static_cast<float>(QK_K)));  // q2_K: no factor 2
        imatrix_weights<V, n>(b, sigma2, c.sw + ib * N);
        const QkxParams p{3, -0.9f, 0.05f, 36, false, true};
        make_qkx_quants_lanes<V, n>(b.xt, b.wt, p, c.scales + ib * N, c.mins + ib * N, c.Lt + ib * n * N);
    }
}

// The 4-bit scales and mins, d and dmin of one super-block, as the reference.
inline void quantize_scales_q2_k(const float* scales, const float* mins, const float* sw, block_q2_K* y) {
    if (sw) {
        uint8_t Ls[16], Lm[16];
        const float dm = ref::make_qp_quants(16, 15, scales, Ls, sw);
        const float mm = ref::make_qp_quants(16, 15, mins, Lm, sw);
        y->d = f32_to_fp16(dm);
        y->dmin = f32_to_fp16(mm);
        for (int j = 0; j < 16; ++j) y->scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
        return;
    }
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float q4scale = 15.f;
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j) y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        y->d = f32_to_fp16(max_scale / q4scale);
    } else {
        std::memset(y->scales, 0, sizeof(y->scales));
        y->d = f32_to_fp16(0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j) {
            y->scales[j] |= static_cast<uint8_t>(static_cast<unsigned>(nearest_int(iscale * mins[j])) << 4);
        }
        y->dmin = f32_to_fp16(max_min / q4scale);
    } else {
        y->dmin = f32_to_fp16(0.f);
    }
}

template <class V>
void finish_q2_k(const float* x, const float* qw, const Chunk<V, 16>& c, int g0, block_q2_K* y) {
    quantize_scales_q2_k(c.scales + g0, c.mins + g0, qw ? c.sw + g0 : nullptr, y);
    alignas(64) uint8_t L[QK_K];
    const float d_all = fp16_to_f32(y->d), m_all = fp16_to_f32(y->dmin);
    for (int j = 0; j < 16; ++j) {
        const float d = d_all * (y->scales[j] & 0xF);
        if (!d) {
            c.levels().copy(g0 + j, L + 16 * j);  // a zero scale keeps the search's levels
            continue;
        }
        requantize_group<typename V::Base, 16, true>(x + 16 * j, d, m_all * (y->scales[j] >> 4), 0, 3, 0, L + 16 * j);
    }
    ref::pack_2bit_quants(L, y->qs);
}

template <class V>
void quantize_row_q2_k(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<block_q2_K*>(vy);
    split_row<V, 16>(x, qw, k / QK_K, [y](auto vec, const float* xs, const float* qs, int64_t i0, int64_t nbs) {
        using W = decltype(vec);
        quantize_row_chunked<W, 16, true>(xs, qs, y + i0, nbs, search_q2_k<W>, finish_q2_k<W>);
    });
}

// ---- q3_K --------------------------------------------------------------------------------------

template <class V>
void search_q3_k(Batch<V, 16>& b, Chunk<V, 16>& c, int ib) {
    constexpr int N = V::N, n = 16;
    if (!b.weighted) {
        make_q3_quants_lanes<V, n>(b.xt, 4, c.scales + ib * N, c.Lt + ib * n * N);
    } else {
        const auto sigma2 = V::div(V::mul(V::set1(2.f), b.ss), V::set1(static_cast<float>(QK_K)));
        imatrix_weights<V, n>(b, sigma2, c.sw + ib * N);
        make_qx_quants_lanes<V, n>(b.xt, b.wt, 4, c.scales + ib * N, c.Lt + ib * n * N);
    }
}

// The 6-bit scales and d of one super-block, as the reference: without weights the scale of
// largest magnitude maps to -32; with them make_qx_quants fits the 16 scales.
inline void quantize_scales_q3_k(const float* scales, const float* sw, block_q3_K* y) {
    std::memset(y->scales, 0, sizeof(y->scales));
    if (sw) {
        int8_t Ls[16];  // biased by 32 already (make_qx_quants stores l + nmax)
        const float d_block = ref::make_qx_quants(16, 32, scales, Ls, 1, sw);
        for (int j = 0; j < 16; ++j) ref::set_scale_q3_k(j, Ls[j], y->scales);
        y->d = f32_to_fp16(d_block);
        return;
    }
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
        const float a = std::fabs(scales[j]);
        if (a > amax) { amax = a; max_scale = scales[j]; }
    }
    if (!max_scale) {
        y->d = f32_to_fp16(0.f);
        return;
    }
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; ++j) {
        const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));  // ggml keeps it in int8
        ref::set_scale_q3_k(j, std::max(-32, std::min(31, static_cast<int>(l))) + 32, y->scales);
    }
    y->d = f32_to_fp16(1 / iscale);
}

template <class V>
void finish_q3_k(const float* x, const float* qw, const Chunk<V, 16>& c, int g0, block_q3_K* y) {
    quantize_scales_q3_k(c.scales + g0, qw ? c.sw + g0 : nullptr, y);
    alignas(64) uint8_t L[QK_K];
    const float d_all = fp16_to_f32(y->d);
    for (int j = 0; j < 16; ++j) {
        const float d = d_all * ref::get_scale_q3_k(j, y->scales);
        if (!d) {
            c.levels().copy(g0 + j, L + 16 * j);  // a zero scale keeps the search's levels
            continue;
        }
        requantize_group<typename V::Base, 16, false>(x + 16 * j, d, 0.f, -4, 3, 4, L + 16 * j);
    }
    // bit 2 of value e goes to hmask[e % 32] bit e / 32, the low 2 bits to qs
    for (int l = 0; l < 32; ++l) {
        unsigned h = 0;
        for (int s = 0; s < 8; ++s) h |= ((L[32 * s + l] >> 2) & 1u) << s;
        y->hmask[l] = static_cast<uint8_t>(h);
    }
    for (int e = 0; e < QK_K; ++e) L[e] &= 3;
    ref::pack_2bit_quants(L, y->qs);
}

template <class V>
void quantize_row_q3_k(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<block_q3_K*>(vy);
    split_row<V, 16>(x, qw, k / QK_K, [y](auto vec, const float* xs, const float* qs, int64_t i0, int64_t nbs) {
        using W = decltype(vec);
        quantize_row_chunked<W, 16, true>(xs, qs, y + i0, nbs, search_q3_k<W>, finish_q3_k<W>);
    });
}

}  // namespace
}  // namespace lowbit::simd
