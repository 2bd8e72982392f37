// The rows8 kernels (core/rows8.h) with NEON: the arithmetic of ../avx2/matmul_rows8.h and
// ../avx2/matmul_rows8_k.h, integer for integer and float step for float step, so the bits are the
// x86 kernels' (q4_0 / q4_1 / q8_0: llama.cpp's orders; q4_K / q5_K / iq4_xs: lowbit's). A chunk of 8
// rows is two 16-byte registers (rows 0-3, rows 4-7); NEON's SDOT is signed x signed, so levels go in
// signed (no +128 offsets as vpdpbusd needs).
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "neon.h"

namespace lowbit {
namespace {

struct Rows8Half {  // 8 lanes: rows 0-3, rows 4-7
    int32x4_t a, b;
};
struct Rows8F {
    float32x4_t a, b;
};
inline Rows8F rows8_f16x8_neon(const uint8_t* p) { return {f16x4(p), f16x4(p + 8)}; }
inline Rows8Half rows8_load32(const uint8_t* p) {
    return {vreinterpretq_s32_u8(vld1q_u8(p)), vreinterpretq_s32_u8(vld1q_u8(p + 16))};
}

// The nibbles of a chunk of 8 rows: lane r's low nibbles (values 4c.., or a sub-block's first half) and high.
struct NibblePair {
    int8x16_t lo_a, lo_b, hi_a, hi_b;
};
inline NibblePair rows8_nibbles_neon(const uint8_t* chunk) {
    const uint8x16_t a = vld1q_u8(chunk), b = vld1q_u8(chunk + 16), m = vdupq_n_u8(0x0F);
    return {vreinterpretq_s8_u8(vandq_u8(a, m)), vreinterpretq_s8_u8(vandq_u8(b, m)),
            vreinterpretq_s8_u8(vshrq_n_u8(a, 4)), vreinterpretq_s8_u8(vshrq_n_u8(b, 4))};
}

template <bool kOn>
inline void rows8_prefetch_neon(const uint8_t* blk, int64_t bytes) {
    if constexpr (kOn)
        for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(blk + 4096 + o);
}

inline void store8(float* c, Rows8F v) {
    vst1q_f32(c, v.a);
    vst1q_f32(c + 4, v.b);
}

// Each group meets the rows of x up to MA at a time; the first pass of a multi-row call prefetches
// (as on x86: the tiles for several rows no longer keep enough loads in flight by themselves).
template <int MA, class Tile>
void rows8_by_groups_neon(const GemmArgs& p, Tile tile) {
    using On = std::true_type;
    using Off = std::false_type;
    for (int64_t g = 0; g < p.n / 8; ++g)
        for (int64_t i0 = 0; i0 < p.m; i0 += MA) {
            const int64_t ma = std::min<int64_t>(MA, p.m - i0);
            const bool first = i0 == 0 && p.m > 1;
            if (ma == 1) first ? tile(std::integral_constant<int, 1>{}, On{}, g, i0) : tile(std::integral_constant<int, 1>{}, Off{}, g, i0);
            if constexpr (MA >= 2)
                if (ma == 2) first ? tile(std::integral_constant<int, 2>{}, On{}, g, i0) : tile(std::integral_constant<int, 2>{}, Off{}, g, i0);
        }
}


// ---- q4_0: one accumulator per output (llama.cpp's repacked order) ----
template <class D, int MA, bool kPf>
void rows8_q4_0_tile_neon(const GemmArgs& p, int64_t g, int64_t i0) {
    constexpr int64_t kBlock = 8 * sizeof(block_q4_0);
    const int64_t nb = p.k / 32;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const GemmXRows<block_q8_0, MA> x(p, i0);
    const int8x16_t eight = vdupq_n_s8(8);
    Rows8F acc[MA];
    for (int i = 0; i < MA; ++i) acc[i] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch_neon<kPf>(blk, kBlock);
        Rows8Half s[MA];
        for (int i = 0; i < MA; ++i) s[i] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        LOWBIT_UNROLL for (int c = 0; c < 4; ++c) {
            const NibblePair q = rows8_nibbles_neon(blk + 16 + 32 * c);
            const int8x16_t la = vsubq_s8(q.lo_a, eight), lb = vsubq_s8(q.lo_b, eight);
            const int8x16_t ha = vsubq_s8(q.hi_a, eight), hb = vsubq_s8(q.hi_b, eight);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const int8x16_t xl = dup_dword(x.a[i][b].qs + 4 * c), xh = dup_dword(x.a[i][b].qs + 16 + 4 * c);
                s[i].a = D::dot4_add(D::dot4_add(s[i].a, la, xl), ha, xh);
                s[i].b = D::dot4_add(D::dot4_add(s[i].b, lb, xl), hb, xh);
            }
        }
        const Rows8F dw = rows8_f16x8_neon(blk);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const float da = x.ds[i][2 * b];
            acc[i].a = vfmaq_f32(acc[i].a, vcvtq_f32_s32(s[i].a), vmulq_n_f32(dw.a, da));
            acc[i].b = vfmaq_f32(acc[i].b, vcvtq_f32_s32(s[i].b), vmulq_n_f32(dw.b, da));
        }
    }
    for (int i = 0; i < MA; ++i) store8(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

// ---- q4_1 / q8_0: ggml's vec_dot order, lane l of 8 outputs in register pair l ----
template <class D, bool kQ8, int MA, bool kPf>
void rows8_lanes_tile_neon(const GemmArgs& p, int64_t g, int64_t i0) {
    constexpr int64_t kBlock = 8 * (kQ8 ? sizeof(block_q8_0) : sizeof(block_q4_1));
    constexpr int64_t kQs = kQ8 ? 16 : 32;
    const int64_t nb = p.k / 32;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    using A = std::conditional_t<kQ8, block_q8_0, block_q8_1>;
    const GemmXRows<A, MA> x(p, i0);
    Rows8F acc[MA][8], summs[MA];
    for (int i = 0; i < MA; ++i) {
        summs[i] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        for (int l = 0; l < 8; ++l) acc[i][l] = summs[i];
    }
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch_neon<kPf>(blk, kBlock);
        const Rows8F d8 = rows8_f16x8_neon(blk);
        Rows8F dd[MA];
        for (int i = 0; i < MA; ++i) {
            dd[i] = {vmulq_n_f32(d8.a, x.ds[i][2 * b]), vmulq_n_f32(d8.b, x.ds[i][2 * b])};
            if constexpr (!kQ8) {
                const Rows8F m8 = rows8_f16x8_neon(blk + 16);
                summs[i].a = vaddq_f32(summs[i].a, vmulq_n_f32(m8.a, x.ds[i][2 * b + 1]));
                summs[i].b = vaddq_f32(summs[i].b, vmulq_n_f32(m8.b, x.ds[i][2 * b + 1]));
            }
        }
        // lane l's weights for 8 rows: q8_0 chunk l; q4_1 chunk l % 4's low (l < 4) or high nibbles
        LOWBIT_UNROLL for (int c = 0; c < (kQ8 ? 8 : 4); ++c) {
            int8x16_t wa[2], wb[2];
            if constexpr (kQ8) {
                wa[0] = load_s8(blk + kQs + 32 * c);
                wb[0] = load_s8(blk + kQs + 32 * c + 16);
            } else {
                const NibblePair q = rows8_nibbles_neon(blk + kQs + 32 * c);
                wa[0] = q.lo_a, wb[0] = q.lo_b, wa[1] = q.hi_a, wb[1] = q.hi_b;
            }
            LOWBIT_UNROLL for (int h = 0; h < (kQ8 ? 1 : 2); ++h) {
                const int l = c + 4 * h;
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                    const int8x16_t xd = dup_dword(x.a[i][b].qs + 4 * l);
                    const int32x4_t sa = D::dot4_add(vdupq_n_s32(0), wa[h], xd);
                    const int32x4_t sb = D::dot4_add(vdupq_n_s32(0), wb[h], xd);
                    acc[i][l].a = vfmaq_f32(acc[i][l].a, vcvtq_f32_s32(sa), dd[i].a);
                    acc[i][l].b = vfmaq_f32(acc[i][l].b, vcvtq_f32_s32(sb), dd[i].b);
                }
            }
        }
    }
    for (int i = 0; i < MA; ++i) {
        Rows8F out;
        for (int half = 0; half < 2; ++half) {
            auto lane = [&](int l) { return half ? acc[i][l].b : acc[i][l].a; };
            float32x4_t s[4];
            for (int l = 0; l < 4; ++l) s[l] = vaddq_f32(lane(l + 4), lane(l));
            const float32x4_t u0 = vaddq_f32(s[0], s[2]), u1 = vaddq_f32(s[1], s[3]);
            float32x4_t t = vaddq_f32(u0, u1);
            if constexpr (!kQ8) t = vaddq_f32(t, half ? summs[i].b : summs[i].a);  // as x86: q8_0 adds nothing
            (half ? out.b : out.a) = t;
        }
        store8(p.c + (i0 + i) * p.ldc + 8 * g, out);
    }
}

// ---- K-quants (q8_K activations): one exact int32 total per row and super-block ----

// q4_K / q5_K's 12 scale bytes of 8 rows, per lane: sc 0-3, sc 4-7, m 0-3, m 4-7 as bytes of a word.
struct K4ScalesNeon {
    int32x4_t sc03, sc47, mn03, mn47;
};
inline K4ScalesNeon k4_scales_half(int32x4_t a0, int32x4_t a1, int32x4_t a2) {
    const int32x4_t m6 = vdupq_n_s32(0x3f3f3f3f), m4 = vdupq_n_s32(0x0f0f0f0f), m2 = vdupq_n_s32(0x03030303);
    auto top2 = [&](int32x4_t a) {
        return vshlq_n_s32(vandq_s32(vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), 6)), m2), 4);
    };
    const int32x4_t a2h = vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a2), 4));
    return {vandq_s32(a0, m6), vorrq_s32(vandq_s32(a2, m4), top2(a0)), vandq_s32(a1, m6),
            vorrq_s32(vandq_s32(a2h, m4), top2(a1))};
}
inline int32x4_t byte_of(int32x4_t v, int j) {  // byte j of each lane
    const uint32x4_t u = vreinterpretq_u32_s32(v);
    return vreinterpretq_s32_u32(vandq_u32(vshlq_u32(u, vdupq_n_s32(-8 * j)), vdupq_n_u32(0xFF)));
}

template <class D, bool kQ5, int MA, bool kPf>
void rows8_q45_k_tile_neon(const GemmArgs& p, int64_t g, int64_t i0) {
    constexpr int64_t kBlock = 8 * (kQ5 ? sizeof(block_q5_K) : sizeof(block_q4_K));
    constexpr int64_t kQs = 8 * (kQ5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
    constexpr int64_t kQh = 8 * offsetof(block_q5_K, qh);
    const int64_t nsb = p.k / QK_K;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const block_q8_K* a[MA];
    for (int i = 0; i < MA; ++i)
        a[i] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
    Rows8F acc[MA];
    for (int i = 0; i < MA; ++i) acc[i] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    const uint8x16_t one = vdupq_n_u8(1);
    for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch_neon<kPf>(blk, kBlock);
        K4ScalesNeon s[2];  // rows 0-3, rows 4-7
        for (int h = 0; h < 2; ++h)
            s[h] = k4_scales_half(vld1q_s32(reinterpret_cast<const int32_t*>(blk + 32 + 16 * h)),
                                  vld1q_s32(reinterpret_cast<const int32_t*>(blk + 64 + 16 * h)),
                                  vld1q_s32(reinterpret_cast<const int32_t*>(blk + 96 + 16 * h)));
        Rows8Half isum[MA];
        for (int i = 0; i < MA; ++i) isum[i] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        LOWBIT_UNROLL for (int q = 0; q < 4; ++q) {
            Rows8Half sl[MA], sh[MA];
            for (int i = 0; i < MA; ++i) sl[i] = sh[i] = {vdupq_n_s32(0), vdupq_n_s32(0)};
            LOWBIT_UNROLL for (int l = 0; l < 8; ++l) {
                NibblePair n = rows8_nibbles_neon(blk + kQs + 32 * (8 * q + l));
                if constexpr (kQ5) {
                    const uint8_t* hp = blk + kQh + 32 * l;
                    const uint8x16_t ha = vld1q_u8(hp), hb = vld1q_u8(hp + 16);
                    auto bit = [&](uint8x16_t h, int k) {
                        return vreinterpretq_s8_u8(vshlq_n_u8(vandq_u8(vshlq_u8(h, vdupq_n_s8(static_cast<int8_t>(-k))), one), 4));
                    };
                    n.lo_a = vorrq_s8(n.lo_a, bit(ha, 2 * q)), n.lo_b = vorrq_s8(n.lo_b, bit(hb, 2 * q));
                    n.hi_a = vorrq_s8(n.hi_a, bit(ha, 2 * q + 1)), n.hi_b = vorrq_s8(n.hi_b, bit(hb, 2 * q + 1));
                }
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                    const int8x16_t xl = dup_dword(a[i][b].qs + 4 * (16 * q + l));
                    const int8x16_t xh = dup_dword(a[i][b].qs + 4 * (16 * q + 8 + l));
                    sl[i].a = D::dot4_add(sl[i].a, n.lo_a, xl), sl[i].b = D::dot4_add(sl[i].b, n.lo_b, xl);
                    sh[i].a = D::dot4_add(sh[i].a, n.hi_a, xh), sh[i].b = D::dot4_add(sh[i].b, n.hi_b, xh);
                }
            }
            for (int h = 0; h < 2; ++h) {
                const int32x4_t v = q < 2 ? s[h].sc03 : s[h].sc47;
                const int32x4_t scl = byte_of(v, (2 * q) % 4), sch = byte_of(v, (2 * q + 1) % 4);
                for (int i = 0; i < MA; ++i) {
                    int32x4_t& t = h ? isum[i].b : isum[i].a;
                    t = vmlaq_s32(t, h ? sl[i].b : sl[i].a, scl);
                    t = vmlaq_s32(t, h ? sh[i].b : sh[i].a, sch);
                }
            }
        }
        const Rows8F d8 = rows8_f16x8_neon(blk), dmin8 = rows8_f16x8_neon(blk + 16);
        for (int i = 0; i < MA; ++i) {
            int bs[8];
            for (int j = 0; j < 8; ++j) bs[j] = a[i][b].bsums[2 * j] + a[i][b].bsums[2 * j + 1];
            const float da = a[i][b].d;
            for (int h = 0; h < 2; ++h) {
                int32x4_t imin = vdupq_n_s32(0);
                for (int j = 0; j < 8; ++j) imin = vmlaq_n_s32(imin, byte_of(j < 4 ? s[h].mn03 : s[h].mn47, j % 4), bs[j]);
                float32x4_t& t = h ? acc[i].b : acc[i].a;
                t = vfmaq_f32(t, vcvtq_f32_s32(h ? isum[i].b : isum[i].a), vmulq_n_f32(h ? d8.b : d8.a, da));
                t = vfmsq_f32(t, vcvtq_f32_s32(imin), vmulq_n_f32(h ? dmin8.b : dmin8.a, da));
            }
        }
    }
    for (int i = 0; i < MA; ++i) store8(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

template <class D, int MA, bool kPf>
void rows8_iq4_xs_tile_neon(const GemmArgs& p, int64_t g, int64_t i0) {
    constexpr int64_t kBlock = 8 * sizeof(block_iq4_xs);
    constexpr int64_t kQs = 8 * offsetof(block_iq4_xs, qs), kSl = 8 * offsetof(block_iq4_xs, scales_l);
    const int64_t nsb = p.k / QK_K;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const block_q8_K* a[MA];
    for (int i = 0; i < MA; ++i)
        a[i] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
    const int8x16_t table = vld1q_s8(kvalues_iq4nl);
    Rows8F acc[MA];
    for (int i = 0; i < MA; ++i) acc[i] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch_neon<kPf>(blk, kBlock);
        const Rows8Half sl = rows8_load32(blk + kSl);
        const uint16x8_t sh16 = vld1q_u16(reinterpret_cast<const uint16_t*>(blk + 16));
        const Rows8Half sh = {vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sh16))), vreinterpretq_s32_u32(vmovl_high_u16(sh16))};
        Rows8Half isum[MA];
        for (int i = 0; i < MA; ++i) isum[i] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        LOWBIT_UNROLL for (int j = 0; j < 8; ++j) {
            Rows8Half sj[MA];
            for (int i = 0; i < MA; ++i) sj[i] = {vdupq_n_s32(0), vdupq_n_s32(0)};
            LOWBIT_UNROLL for (int u = 0; u < 4; ++u) {
                const NibblePair n = rows8_nibbles_neon(blk + kQs + 32 * (4 * j + u));
                const int8x16_t la = vqtbl1q_s8(table, vreinterpretq_u8_s8(n.lo_a)), lb = vqtbl1q_s8(table, vreinterpretq_u8_s8(n.lo_b));
                const int8x16_t ha = vqtbl1q_s8(table, vreinterpretq_u8_s8(n.hi_a)), hb = vqtbl1q_s8(table, vreinterpretq_u8_s8(n.hi_b));
                LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                    const int8x16_t xl = dup_dword(a[i][b].qs + 4 * (8 * j + u)), xh = dup_dword(a[i][b].qs + 4 * (8 * j + 4 + u));
                    sj[i].a = D::dot4_add(D::dot4_add(sj[i].a, la, xl), ha, xh);
                    sj[i].b = D::dot4_add(D::dot4_add(sj[i].b, lb, xl), hb, xh);
                }
            }
            for (int h = 0; h < 2; ++h) {
                const uint32x4_t l4 = vreinterpretq_u32_s32(h ? sl.b : sl.a), h2 = vreinterpretq_u32_s32(h ? sh.b : sh.a);
                const uint32x4_t ls = vorrq_u32(vandq_u32(vshlq_u32(l4, vdupq_n_s32(-4 * j)), vdupq_n_u32(0xF)),
                                                vshlq_n_u32(vandq_u32(vshlq_u32(h2, vdupq_n_s32(-2 * j)), vdupq_n_u32(3)), 4));
                const int32x4_t sc = vsubq_s32(vreinterpretq_s32_u32(ls), vdupq_n_s32(32));
                for (int i = 0; i < MA; ++i) {
                    int32x4_t& t = h ? isum[i].b : isum[i].a;
                    t = vmlaq_s32(t, h ? sj[i].b : sj[i].a, sc);
                }
            }
        }
        const Rows8F d8 = rows8_f16x8_neon(blk);
        for (int i = 0; i < MA; ++i) {
            acc[i].a = vfmaq_f32(acc[i].a, vcvtq_f32_s32(isum[i].a), vmulq_n_f32(d8.a, a[i][b].d));
            acc[i].b = vfmaq_f32(acc[i].b, vcvtq_f32_s32(isum[i].b), vmulq_n_f32(d8.b, a[i][b].d));
        }
    }
    for (int i = 0; i < MA; ++i) store8(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

template <class D>
void neon_rows8_q4_0(const GemmArgs& p) {
    rows8_by_groups_neon<2>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q4_0_tile_neon<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0);
    });
}
template <class D, bool kQ8>
void neon_rows8_lanes(const GemmArgs& p) {
    rows8_by_groups_neon<1>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_lanes_tile_neon<D, kQ8, decltype(ma)::value, decltype(pf)::value>(p, g, i0);
    });
}
template <class D, bool kQ5>
void neon_rows8_q45_k(const GemmArgs& p) {
    rows8_by_groups_neon<2>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q45_k_tile_neon<D, kQ5, decltype(ma)::value, decltype(pf)::value>(p, g, i0);
    });
}
template <class D>
void neon_rows8_iq4_xs(const GemmArgs& p) {
    rows8_by_groups_neon<2>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_iq4_xs_tile_neon<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0);
    });
}

}  // namespace
}  // namespace lowbit
