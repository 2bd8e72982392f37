// SIMD IQ4_NL / IQ4_XS quantizers (with and without importance weights), written once over a vector
// vocabulary V (VecAvx2, VecAvx512, or VecX2 pairs of them) and bit-identical to the scalar
// reference (csrc/ref/iq4_nl.cpp, iq4_xs.cpp, iq4_common.cpp), which they follow step by step.
//
// As for the K-quants (quantize_kquant_simd.h), the expensive part, iq4_block_scale's search over
// 16 candidate scales, runs lane-parallel ACROSS blocks: lane g holds one 32-value block (iq4_nl:
// consecutive blocks of a row; iq4_xs: the 8 sub-blocks of a super-block, or of several) with its
// values transposed, and executes the reference's scalar sequence for that block: the same sums in
// the same order, correctly rounded div/sqrt, no FMA, masks and blends for the data-dependent ifs.
// The final levels (nearest level of x/d against the chosen scale) and the packing are elementwise
// and run along the values; the per-super-block iq4_xs scale quantization stays scalar. The
// nearest-level search itself is Iq4Levels<V> (iq4_levels_simd.h).
#pragma once
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/blocks.h"
#include "../core/fp16.h"
#include "iq4_levels_simd.h"
#include "quantize_kquant_simd.h"

namespace lowbit::simd {
namespace {

// ref::iq4_block_scale on N blocks of 32 values at once: xt, wt are the transposed values and
// weights (xt[j*N + g] = value j of block g). Returns the scale of each lane (0 for zero blocks).
template <class V>
typename V::F iq4_block_scale_lanes(const float* xt, const float* wt) {
    using F = typename V::F;
    using M = typename V::M;
    using L = Iq4Levels<V>;
    constexpr int N = V::N, n = 32;
    F max = V::zero(), amax = V::zero();
    for (int j = 0; j < n; ++j) {
        const F x = V::load(xt + j * N), ax = V::abs(x);
        const M bigger = V::gt(ax, amax);
        amax = V::blend(bigger, amax, ax);
        max = V::blend(bigger, max, x);
    }
    const M zero_block = V::lt(amax, V::set1(kGroupMaxEps));
    // The reference returns early on a zero block; its lane here runs along (dividing by a zero
    // max, so inf/NaN) and is masked out at the end.
    if (V::all(zero_block)) return V::zero();
    // ref iq4_fit_sums: sumqx += (w*q)*x, sumq2 += (w*q)*q, from 0 in value order
    auto fit = [&](F id, F& sumqx, F& sumq2) {
        sumqx = sumq2 = V::zero();
        for (int j = 0; j < n; ++j) {
            const F x = V::load(xt + j * N);
            const F q = L::value(V::mul(id, x));
            const F wq = V::mul(V::load(wt + j * N), q);
            sumqx = V::add(sumqx, V::mul(wq, x));
            sumq2 = V::add(sumq2, V::mul(wq, q));
        }
    };
    const F kv0 = V::set1(static_cast<float>(kvalues_iq4nl[0]));
    F sumqx, sumq2;
    fit(V::div(V::set1(1.f), V::div(V::neg(max), kv0)), sumqx, sumq2);
    F d = V::blend(V::gt(sumq2, V::zero()), V::zero(), V::div(sumqx, sumq2));
    F best = V::mul(d, sumqx);
    for (int itry = -7; itry <= 7; ++itry) {
        fit(V::div(V::set1(static_cast<float>(itry + kvalues_iq4nl[0])), max), sumqx, sumq2);
        // `sumq2 > 0 && sumqx*sumqx > best*sumq2`; the division is only kept where it is taken
        const M better = V::mand(V::gt(sumq2, V::zero()), V::gt(V::mul(sumqx, sumqx), V::mul(best, sumq2)));
        const F this_d = V::div(sumqx, sumq2);
        d = V::blend(better, d, this_d);
        best = V::blend(better, best, V::mul(this_d, sumqx));
    }
    return V::blend(zero_block, d, V::zero());
}

// ref::iq4_block_weights on transposed lanes: qt*sqrt(sigma2 + x^2), or x^2 when qt is null.
template <class V>
void iq4_weights_lanes(const float* xt, const float* qt, typename V::F sigma2, float* wt) {
    constexpr int N = V::N;
    for (int j = 0; j < 32; ++j) {
        const auto x = V::load(xt + j * N), x2 = V::mul(x, x);
        V::store(wt + j * N, qt ? V::mul(V::load(qt + j * N), V::sqrt(V::add(sigma2, x2))) : x2);
    }
}

// Levels of one 32-value block against inverse scale id (the reference's nearest level of id*x),
// elementwise along the values with the vocabulary B, then packed two per byte as
// ref::iq4_pack_nibbles (byte j: level j low, level j+16 high; levels < 16, so no carry).
template <class B>
void iq4_levels_packed(const float* x, float id, uint8_t* qs) {
    alignas(16) uint8_t L[32];
    const auto vid = B::set1(id);
    for (int j = 0; j < 32; j += B::N) B::store_u8(L + j, Iq4Levels<B>::index(B::mul(vid, B::load(x + j))));
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(L));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(L + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
}

// ---- iq4_nl ------------------------------------------------------------------------------------

// nb consecutive blocks, V::N per batch; a last partial batch is padded with zero blocks (their
// lanes take the zero-block path) and only the real blocks are written.
template <class V>
void quantize_blocks_iq4_nl(const float* x, const float* qw, block_iq4_nl* y, int64_t nb) {
    constexpr int N = V::N, n = QK4_NL;
    Batch<V, n> b;
    alignas(64) float xpad[N * n], qpad[N * n], d[N];
    for (int64_t i0 = 0; i0 < nb; i0 += N) {
        const int cnt = static_cast<int>(std::min<int64_t>(N, nb - i0));
        const float* xc = x + i0 * n;
        const float* qc = qw ? qw + i0 * n : nullptr;
        if (cnt < N) {
            std::memset(xpad, 0, sizeof(xpad));
            std::memcpy(xpad, xc, sizeof(float) * n * cnt);
            xc = xpad;
            if (qc) {
                std::memset(qpad, 0, sizeof(qpad));
                std::memcpy(qpad, qc, sizeof(float) * n * cnt);
                qc = qpad;
            }
        }
        transpose<N, n>(xc, b.xt);
        auto sigma2 = V::zero();
        if (qc) {
            transpose<N, n>(qc, b.qt);
            // ref::iq4_sigma2 over the block itself: sum of squares in order, times 2/32
            auto ss = V::zero();
            for (int j = 0; j < n; ++j) ss = V::add(ss, V::mul(V::load(b.xt + j * N), V::load(b.xt + j * N)));
            sigma2 = V::mul(ss, V::set1(2.f / n));
        }
        iq4_weights_lanes<V>(b.xt, qc ? b.qt : nullptr, sigma2, b.wt);
        V::store(d, iq4_block_scale_lanes<V>(b.xt, b.wt));
        for (int g = 0; g < cnt; ++g) {
            y[i0 + g].d = f32_to_fp16(d[g]);
            const float id = d[g] ? 1 / d[g] : 0;
            iq4_levels_packed<typename V::Base>(x + (i0 + g) * n, id, y[i0 + g].qs);
        }
    }
}

// Whole batches with V, the rest with the narrower V::Base (less padding on a row's tail).
template <class V>
void quantize_row_iq4_nl(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<block_iq4_nl*>(vy);
    const int64_t nb = k / QK4_NL, bulk = nb / V::N * V::N;
    if (bulk > 0) quantize_blocks_iq4_nl<V>(x, qw, y, bulk);
    if (bulk < nb) {
        quantize_blocks_iq4_nl<typename V::Base>(x + bulk * QK4_NL, qw ? qw + bulk * QK4_NL : nullptr, y + bulk,
                                                 nb - bulk);
    }
}

// ---- iq4_xs ------------------------------------------------------------------------------------

// The free float scale of every sub-block of a batch (ref iq4_xs_sub_scales, minus the max).
template <class V>
void search_iq4_xs(Batch<V, 32>& b, Chunk<V, 32>& c, int ib) {
    // ref::iq4_sigma2 over the super-block: its sum of squares (in order) times 2/256
    const auto sigma2 = b.weighted ? V::mul(b.ss, V::set1(2.f / QK_K)) : V::zero();
    iq4_weights_lanes<V>(b.xt, b.weighted ? b.qt : nullptr, sigma2, b.wt);
    V::store(c.scales + ib * V::N, iq4_block_scale_lanes<V>(b.xt, b.wt));
}

// The rest of ref quantize_block_iq4_xs on one super-block: scalar scale quantization, then the
// levels of each sub-block along its values.
template <class V>
void finish_iq4_xs(const float* x, const float*, const Chunk<V, 32>& c, int g0, block_iq4_xs* y) {
    constexpr int kSub = QK_K / 32;
    const float* scales = c.scales + g0;
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < kSub; ++ib) {
        if (std::fabs(scales[ib]) > amax_scale) { amax_scale = std::fabs(scales[ib]); max_scale = scales[ib]; }
    }
    const float d = -max_scale / 32;
    y->d = f32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    for (int ib = 0; ib < kSub; ++ib) {
        const int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
        const float dl = d * l;
        const float idl = dl ? 1 / dl : 0.f;
        iq4_levels_packed<typename V::Base>(x + 32 * ib, idl, y->qs + 16 * ib);
        const int ls = l + 32;
        if (ib % 2 == 0) y->scales_l[ib / 2] = static_cast<uint8_t>(ls & 0xf);
        else y->scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xf) << 4);
        scales_h = static_cast<uint16_t>(scales_h | ((ls >> 4) << (2 * ib)));
    }
    y->scales_h = scales_h;
}

template <class V>
void quantize_row_iq4_xs(const float* x, void* vy, int64_t k, const float* qw) {
    auto* y = static_cast<block_iq4_xs*>(vy);
    split_row<V, 32>(x, qw, k / QK_K, [y](auto vec, const float* xs, const float* qs, int64_t i0, int64_t nbs) {
        using W = decltype(vec);
        quantize_row_chunked<W, 32, true>(xs, qs, y + i0, nbs, search_iq4_xs<W>, finish_iq4_xs<W>);
    });
}

}  // namespace
}  // namespace lowbit::simd
