// AVX2 few-row matmul of the 32-blocks (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl): each weight block is
// read once from memory, unpacked to 32 bytes in a register and dotted with every activation row.
//
// Unsigned levels (q4/q5) go straight into maddubs (u8 x s8); the offset of q4_0 (-8) and q5_0 (-16)
// is not subtracted per value but folded into the float step: with s = d_a * sum(a) from a_ds, the 8
// int32 lanes of one block give d_w * (d_a * lane - (offset/8) * s), whose lane sum is the block's
// d_w * d_a * sum((q - offset) * a). q4_1 / q5_1 add m_w * s (q8_1's stored s) the same way. Signed
// levels (q8_0, iq4_nl) use maddubs(|w|, sign(a, w)).
//
// Register tile: NW weight rows x MA activation rows of f32 lane accumulators; NW rows at once give
// independent FMA chains for m = 1 and read each activation block once per NW weight rows.
#include <algorithm>

#include "../../core/blocks.h"
#include "matmul_avx2.h"
#include "matmul_simd.h"

namespace lowbit::avx2 {

namespace {

// 16 bytes of nibbles -> 32 levels: byte j holds value j (low nibble) and value j + 16 (high).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// One weight block unpacked: levels, d_w broadcast, and m_w broadcast for the _1 types.
struct Unpacked {
    __m256i q;
    __m256 d, m;
};

// Per type: the block structs, how to unpack, and how one block's lanes enter the accumulator.
// kOffset8 = offset / 8 (the lane share of the offset); kMin: the type has m_w.
struct GvQ4_0 {
    using W = block_q4_0;
    using A = block_q8_0;
    static constexpr bool kSigned = false, kMin = false;
    static constexpr float kOffset8 = 1.0f;
    static Unpacked unpack(const W& b) { return {nibbles32(b.qs), bcast_f16(b.d), _mm256_setzero_ps()}; }
};
struct GvQ4_1 {
    using W = block_q4_1;
    using A = block_q8_1;
    static constexpr bool kSigned = false, kMin = true;
    static constexpr float kOffset8 = 0.0f;
    static Unpacked unpack(const W& b) { return {nibbles32(b.qs), bcast_f16(b.d), bcast_f16(b.m)}; }
};
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
struct GvQ8_0 {
    using W = block_q8_0;
    using A = block_q8_0;
    static constexpr bool kSigned = true, kMin = false;
    static constexpr float kOffset8 = 0.0f;
    static Unpacked unpack(const W& b) {
        return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), bcast_f16(b.d), _mm256_setzero_ps()};
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

// Weight rows j0..j0+NW-1 times activation rows i0..i0+MA-1 over all of k.
template <class T, int NW, int MA>
void gemv_tile(const GemmArgs& p, int64_t j0, int64_t i0) {
    const int64_t nb = p.k / 32;
    const typename T::W* w[NW];
    for (int r = 0; r < NW; ++r)
        w[r] = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + (j0 + r) * p.w_row_bytes);
    const typename T::A* a[MA];
    const float* ds[MA];
    for (int i = 0; i < MA; ++i) {
        a[i] = reinterpret_cast<const typename T::A*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
        ds[i] = p.a_ds + (i0 + i) * nb * 2;
    }
    __m256 acc[NW][MA];
    for (int r = 0; r < NW; ++r)
        for (int i = 0; i < MA; ++i) acc[r][i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i av[MA];
        __m256 da[MA], so[MA];  // d_a; s_a times the lane share of the offset (or of m_w)
        for (int i = 0; i < MA; ++i) {
            av[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i][b].qs));
            da[i] = _mm256_broadcast_ss(ds[i] + 2 * b);
            so[i] = _mm256_mul_ps(_mm256_broadcast_ss(ds[i] + 2 * b + 1), _mm256_set1_ps(T::kMin ? 0.125f : T::kOffset8));
        }
        for (int r = 0; r < NW; ++r) {
            const Unpacked u = T::unpack(w[r][b]);
            const __m256i wabs = T::kSigned ? _mm256_abs_epi8(u.q) : u.q;
            for (int i = 0; i < MA; ++i) {
                const __m256i prod = T::kSigned ? dot_u8s8(wabs, _mm256_sign_epi8(av[i], u.q)) : dot_u8s8(u.q, av[i]);
                const __m256 lanes = _mm256_cvtepi32_ps(prod);
                if (T::kOffset8 != 0.0f) {
                    acc[r][i] = _mm256_fmadd_ps(_mm256_fmsub_ps(lanes, da[i], so[i]), u.d, acc[r][i]);
                } else {
                    acc[r][i] = _mm256_fmadd_ps(lanes, _mm256_mul_ps(u.d, da[i]), acc[r][i]);
                    if (T::kMin) acc[r][i] = _mm256_fmadd_ps(u.m, so[i], acc[r][i]);
                }
            }
        }
    }
    alignas(32) float out[NW][MA];
    LOWBIT_UNROLL for (int r = 0; r < NW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) out[r][i] = hsum_ps(acc[r][i]);
    for (int r = 0; r < NW; ++r)
        for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j0 + r] = out[r][i];
}

// Activation rows i0..i0+MA-1 against weight rows [j0, j1): NW at a time, then one by one.
template <class T, int NW, int MA>
void gemv_rows(const GemmArgs& p, int64_t j0, int64_t j1, int64_t i0) {
    int64_t j = j0;
    for (; j + NW <= j1; j += NW) gemv_tile<T, NW, MA>(p, j, i0);
    for (; j < j1; ++j) gemv_tile<T, 1, MA>(p, j, i0);
}

// Weight rows in chunks that stay in L2 while up to 4 activation rows at a time pass over them.
template <class T>
void gemv(const GemmArgs& p) {
    constexpr int64_t kChunk = 64;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4) {
            switch (std::min<int64_t>(4, p.m - i0)) {
                case 1: gemv_rows<T, 4, 1>(p, j0, j1, i0); break;
                case 2: gemv_rows<T, 4, 2>(p, j0, j1, i0); break;
                case 3: gemv_rows<T, 2, 3>(p, j0, j1, i0); break;
                default: gemv_rows<T, 2, 4>(p, j0, j1, i0); break;
            }
        }
    }
}

}  // namespace

void gemv_q4_0(const GemmArgs& p) { gemv<GvQ4_0>(p); }
void gemv_q4_1(const GemmArgs& p) { gemv<GvQ4_1>(p); }
void gemv_q5_0(const GemmArgs& p) { gemv<GvQ5_0>(p); }
void gemv_q5_1(const GemmArgs& p) { gemv<GvQ5_1>(p); }
void gemv_q8_0(const GemmArgs& p) { gemv<GvQ8_0>(p); }
void gemv_iq4_nl(const GemmArgs& p) { gemv<GvIQ4_NL>(p); }

}  // namespace lowbit::avx2
