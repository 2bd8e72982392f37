// Few-row matmul of the 32-blocks (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl): each weight block is
// read once from memory, unpacked to 32 bytes in a register and dotted with every activation row.
//
// Unsigned levels (q4/q5) go straight into maddubs (u8 x s8); the offset of q4_0 (-8) and q5_0 (-16)
// is not subtracted per value but folded into the float step: with s = d_a * sum(a) from a_ds, the 8
// int32 lanes of one block give d_w * (d_a * lane - (offset/8) * s), whose lane sum is the block's
// d_w * d_a * sum((q - offset) * a). q4_1 / q5_1 add m_w * s (q8_1's stored s) the same way. Signed
// levels (q8_0, iq4_nl) use maddubs(|w|, sign(a, w)) on AVX2; VNNI's vpdpbusd takes them + 128,
// the 128 folded in like q4_0's 8.
//
// Templates on the dot policy D (matmul_dot.h), compiled by the AVX2 and the AVX-512 VNNI files.
#pragma once
#include <algorithm>

#include "../../core/blocks.h"
#include "../../core/kernels.h"
#include "matmul_dot.h"
#include "matmul_simd.h"

namespace lowbit {
namespace {

// One weight block unpacked: levels, d_w broadcast, and m_w broadcast for the _1 types.
struct Unpacked {
    __m256i q;
    __m256 d, m;
};

// Per type: the block structs, how to unpack, and how one block's lanes enter the accumulator.
// kOffset8 = offset / 8 (the lane share of the offset); kMin: the type has m_w.
struct GvQ5_0 {
    using W = block_q5_0;
    using A = block_q8_0;
    static constexpr bool kSigned = false, kMin = false;
    static constexpr float kOffset8 = 2.0f;
    static Unpacked unpack(const W& b) {
        return {_mm256_or_si256(nibbles32(b.qs), bit4_from_bits32(b.qh)), bcast_f16(b.d), _mm256_setzero_ps()};
    }
};
struct GvQ5_1 {
    using W = block_q5_1;
    using A = block_q8_1;
    static constexpr bool kSigned = false, kMin = true;
    static constexpr float kOffset8 = 0.0f;
    static Unpacked unpack(const W& b) {
        return {_mm256_or_si256(nibbles32(b.qs), bit4_from_bits32(b.qh)), bcast_f16(b.d), bcast_f16(b.m)};
    }
};
struct GvIQ4_NL {
    using W = block_iq4_nl;
    using A = block_q8_0;
    static constexpr bool kSigned = true, kMin = false;
    static constexpr float kOffset8 = 0.0f;
    static Unpacked unpack(const W& b) {
        return {_mm256_shuffle_epi8(iq4_table(), nibbles32(b.qs)), bcast_f16(b.d), _mm256_setzero_ps()};
    }
};

// One weight row j against activation rows i0..i0+MA-1. Rows are taken one at a time so the weights
// stream in memory order (rows are contiguous): interleaving several rows costs half the DRAM
// bandwidth of a core (measured: 9 vs 17 GB/s for q4_0). Independent FMA chains come from the
// activation rows and, for few of them, from dealing the blocks round-robin to S accumulators.
template <class D, class T, int MA, int S>
void gemv_row(const GemmArgs& p, int64_t j, int64_t i0) {
    const int64_t nb = p.k / 32;
    const auto* w = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes);
    const typename T::A* a[MA];
    const float* ds[MA];
    for (int i = 0; i < MA; ++i) {
        a[i] = reinterpret_cast<const typename T::A*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
        ds[i] = p.a_ds + (i0 + i) * nb * 2;
    }
    __m256 acc[S][MA];
    LOWBIT_UNROLL for (int r = 0; r < S; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[r][i] = _mm256_setzero_ps();
    // VNNI: signed levels + 128 are unsigned, and the 128 becomes an offset like q4_0's 8.
    constexpr bool kFlip = T::kSigned && D::kVnni, kSignTrick = T::kSigned && !D::kVnni;
    constexpr float kOff8 = kFlip ? 16.0f : T::kOffset8;
    auto block = [&](int64_t b, __m256* acc_s) {
        const Unpacked u = T::unpack(w[b]);
        const __m256i q = kFlip ? _mm256_xor_si256(u.q, _mm256_set1_epi8(-128)) : u.q;
        const __m256i wabs = kSignTrick ? _mm256_abs_epi8(u.q) : q;
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i][b].qs));
            const __m256 da = _mm256_broadcast_ss(ds[i] + 2 * b);
            // s_a times the lane share of the offset (or of m_w)
            const __m256 so = _mm256_mul_ps(_mm256_broadcast_ss(ds[i] + 2 * b + 1),
                                            _mm256_set1_ps(T::kMin ? 0.125f : kOff8));
            const __m256i prod = kSignTrick ? D::dot4(wabs, _mm256_sign_epi8(av, u.q)) : D::dot4(q, av);
            const __m256 lanes = _mm256_cvtepi32_ps(prod);
            if (kOff8 != 0.0f) {
                acc_s[i] = _mm256_fmadd_ps(_mm256_fmsub_ps(lanes, da, so), u.d, acc_s[i]);
            } else {
                acc_s[i] = _mm256_fmadd_ps(lanes, _mm256_mul_ps(u.d, da), acc_s[i]);
                if (T::kMin) acc_s[i] = _mm256_fmadd_ps(u.m, so, acc_s[i]);
            }
        }
    };
    int64_t b = 0;
    for (; b + S <= nb; b += S) LOWBIT_UNROLL for (int r = 0; r < S; ++r) block(b + r, acc[r]);
    for (; b < nb; ++b) block(b, acc[0]);
    LOWBIT_UNROLL for (int r = 1; r < S; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[0][i] = _mm256_add_ps(acc[0][i], acc[r][i]);
    alignas(32) float out[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) out[i] = hsum_ps(acc[0][i]);
    for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j] = out[i];
}

// The _1 types (q4_1, q5_1) against one activation row, the decode case. gemv_row spends most of
// such a block on its two f16: two broadcasts, two conversions, two multiplies and a second FMA on the
// accumulator chain, which kept q4_1 compute-bound (74% of the read bandwidth at 28672 x 4096, where
// q4_0 exceeds it). Here the block's (d_w, m_w) dword converts once to [d_w, m_w, d_w, m_w, ...], one
// multiply by the activation's [d_a, s_a] pair gives [d_w d_a, m_w s_a, ...], whose even lanes scale
// the block dot and which is added whole to a second accumulator: every odd lane of that one sums
// the min terms m_w * s_a (the same sum in each), read from lane 1 at the end.
template <class D, class T, int S>
void gemv_row_min_1(const GemmArgs& p, int64_t j, int64_t i0) {
    const int64_t nb = p.k / 32;
    const auto* w = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes);
    const auto* a = reinterpret_cast<const typename T::A*>(static_cast<const uint8_t*>(p.a) + i0 * p.a_row_bytes);
    const double* ds = reinterpret_cast<const double*>(p.a_ds + i0 * nb * 2);
    __m256 acc[S], acc_min[S];
    LOWBIT_UNROLL for (int r = 0; r < S; ++r) acc[r] = acc_min[r] = _mm256_setzero_ps();
    auto block = [&](int64_t b, __m256& acc_r, __m256& min_r) {
        int32_t dm32;
        std::memcpy(&dm32, &w[b], 4);
        const __m256 dm = _mm256_cvtph_ps(_mm_set1_epi32(dm32));
        const __m256 v = _mm256_mul_ps(dm, _mm256_castpd_ps(_mm256_broadcast_sd(ds + b)));  // d*da, m*sa, ...
        min_r = _mm256_add_ps(min_r, v);
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
        const __m256 lanes = _mm256_cvtepi32_ps(D::dot4(T::unpack(w[b]).q, av));
        acc_r = _mm256_fmadd_ps(lanes, _mm256_permute_ps(v, 0), acc_r);
    };
    int64_t b = 0;
    for (; b + S <= nb; b += S) LOWBIT_UNROLL for (int r = 0; r < S; ++r) block(b + r, acc[r], acc_min[r]);
    for (; b < nb; ++b) block(b, acc[0], acc_min[0]);
    LOWBIT_UNROLL for (int r = 1; r < S; ++r) {
        acc[0] = _mm256_add_ps(acc[0], acc[r]);
        acc_min[0] = _mm256_add_ps(acc_min[0], acc_min[r]);
    }
    // every odd lane of acc_min holds the same sum of m_w * s_a
    p.c[i0 * p.ldc + j] = hsum_ps(acc[0]) + _mm_cvtss_f32(_mm_movehdup_ps(_mm256_castps256_ps128(acc_min[0])));
}

// Weight rows in chunks that stay in L2 while up to 4 activation rows at a time pass over them.
template <class D, class T>
void gemv(const GemmArgs& p) {
    constexpr int64_t kChunk = 64;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4)
            for (int64_t j = j0; j < j1; ++j) switch (std::min<int64_t>(4, p.m - i0)) {
                    case 1:
                        if constexpr (T::kMin)
                            gemv_row_min_1<D, T, 4>(p, j, i0);
                        else
                            gemv_row<D, T, 1, 4>(p, j, i0);
                        break;
                    case 2: gemv_row<D, T, 2, 2>(p, j, i0); break;
                    case 3: gemv_row<D, T, 3, 1>(p, j, i0); break;
                    default: gemv_row<D, T, 4, 1>(p, j, i0); break;
                }
    }
}

}  // namespace
}  // namespace lowbit
