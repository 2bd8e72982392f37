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
#include <cstring>
#include <type_traits>
#include <vector>

#include "../../core/blocks.h"
#include "../../core/fp16.h"
#include "../../core/kernels.h"
#include "matmul_dot.h"
#include "matmul_panel.h"
#include "matmul_simd.h"

// std::vector<__m256i> (the transposed weight groups): GCC warns that the vector type's attributes are
// not part of the template argument; C++17's aligned operator new still gives the 32-byte alignment.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace lowbit {
namespace {

struct GoQ4_1 {
    using W = block_q4_1;
    using A = block_q8_1;
    static constexpr bool kSigned = false, kMin = true;
    static __m256i levels(const W& b) { return nibbles32(b.qs); }  // low nibbles = values 0-15, high 16-31
};
struct GoQ4_0 {  // ggml_vec_dot_q4_0_q8_0: the levels minus 8 as signed bytes, like q8_0
    using W = block_q4_0;
    using A = block_q8_0;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const W& b) { return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8)); }
};
struct GoQ8_0 {
    using W = block_q8_0;
    using A = block_q8_0;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const W& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};

inline int32_t load_u32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}


// 8 outputs of row i of y, lane r to column j + r * rs (the 8-row groups' rows are rs apart).
inline void store_8_rows(const GemmArgs& p, int64_t i, int64_t j, int64_t rs, __m256 v) {
    alignas(32) float out[8];
    _mm256_store_ps(out, v);
    for (int r = 0; r < 8; ++r) p.c[i * p.ldc + j + r * rs] = out[r];
}

// Rows j, j + rs, ..., j + (RW-1) rs against activation rows i0..i0+MA-1.
template <class D, class T, int RW, int MA>
void ggml_order_tile(const GemmArgs& p, int64_t j, int64_t i0, int64_t rs = 1) {
    const int64_t nb = p.k / 32;
    const typename T::W* w[RW];
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        w[r] = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + (j + r * rs) * p.w_row_bytes);
    const GemmXRows<typename T::A, MA> x(p, i0);
    const auto& a = x.a;
    const auto& ds = x.ds;
    // The block's scales go through the vector unit as a pair: lanes {0, 1} = {d_w, m_w} (one 4-byte
    // load and one conversion, where two scalar half conversions cost 8 uops), times x's {d_a, s_a}
    // gives {d_w d_a, m_w s_a}, and lane 1 of a vector running sum is q4_1's float sum of the mins:
    // the same f32 products and additions as the scalar code, in 4-5 fewer uops per block and row
    // (the decode GEMV was bound by the vector ports: q4_1 14336 x 4096 1 thread 15.6 -> 19.7 GB/s).
    __m256 acc[RW][MA];
    __m128 summs[RW][MA];
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            acc[r][i] = _mm256_setzero_ps();
            summs[r][i] = _mm_setzero_ps();
        }
    for (int64_t b = 0; b < nb; ++b) {
        __m256i av[MA];
        __m128 xds[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            av[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i][b].qs));
            xds[i] = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(ds[i] + 2 * b)));
        }
        LOWBIT_UNROLL for (int r = 0; r < RW; ++r) {
            const auto& blk = w[r][b];
            const __m256i q = T::levels(blk);
            const __m256i qabs = T::kSigned ? _mm256_sign_epi8(q, q) : q;
            // d (and q4_1's m) plus whatever follows: every block type here has 4 bytes from d on
            const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(load_u32(&blk.d)));
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const __m256i prod = D::dot4(qabs, T::kSigned ? _mm256_sign_epi8(av[i], q) : av[i]);
                const __m128 scales = _mm_mul_ps(dm, xds[i]);
                acc[r][i] = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(prod), acc[r][i]);
                if constexpr (T::kMin) summs[r][i] = _mm_add_ps(summs[r][i], scales);
            }
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const float mins = _mm_cvtss_f32(_mm_shuffle_ps(summs[r][i], summs[r][i], 1));
            p.c[(i0 + i) * p.ldc + j + r * rs] = hsum_ps(acc[r][i]) + mins;
        }
}

// An f16 field (d, or q4_1's m) of one block of 8 weight rows, as 8 f32 lanes (lane r = row r); blk(r)
// is row r's block. Gathered in two general registers (integer ALUs, idle in these loops) and moved to
// the vector unit once: 8 two-byte stores and a 16-byte reload stalled on store forwarding, and the
// vector shuffle pipes are what the q4_0 decode tile is bound by.
template <class B, fp16_t B::*F = &B::d, class BlockOfRow>
inline __m256 f16_of_8(BlockOfRow blk) {
    uint64_t lo = 0, hi = 0;
    LOWBIT_UNROLL for (int r = 0; r < 4; ++r) {
        lo |= static_cast<uint64_t>(blk(r).*F) << (16 * r);
        hi |= static_cast<uint64_t>(blk(r + 4).*F) << (16 * r);
    }
    return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_cvtsi64_si128(static_cast<int64_t>(lo)),
                                              _mm_cvtsi64_si128(static_cast<int64_t>(hi))));
}
template <class B, fp16_t B::*F = &B::d>
inline __m256 f16_of_8_rows(const B* const* w, int64_t b) {
    return f16_of_8<B, F>([&](int r) -> const B& { return w[r][b]; });
}

// Lane r = the sum of v[r]'s 8 int32 lanes, for lanes of at most 4 x 15 x 128 = 7680 in magnitude (a
// q4_0 block's 4-product groups): pairs of rows packed to int16 (exact at that size) and summed by
// vpmaddwd, twice, then the two 128-bit halves added. 8 shuffles and 4 + 2 multiplies per 8 rows where a
// vphaddd tree costs 14 shuffles and 7 adds, and shuffles bound the q4_0 decode GEMV.
inline __m256i row_sums_8_small(const __m256i* v) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i m[4];  // per half: row 2i's lane pairs (0+1, 2+3), then row 2i+1's
    LOWBIT_UNROLL for (int i = 0; i < 4; ++i) m[i] = _mm256_madd_epi16(_mm256_packs_epi32(v[2 * i], v[2 * i + 1]), ones);
    // per half: rows 0-3 (4-7) each summed over that half's 4 lanes (|value| <= 4 x 7680, exact in int16)
    const __m256i t0123 = _mm256_madd_epi16(_mm256_packs_epi32(m[0], m[1]), ones);
    const __m256i t4567 = _mm256_madd_epi16(_mm256_packs_epi32(m[2], m[3]), ones);
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0123, t4567, 0x20), _mm256_permute2x128_si256(t0123, t4567, 0x31));
}

// q4_0 as llama.cpp runs it on x86: a matrix whose rows are a multiple of 8 is repacked at load into
// 8-row groups (ggml's q4_0_8x8) and multiplied by ggml_gemv / ggml_gemm_q4_0_8x8_q8_0, which keep ONE
// float accumulator per output: block by block, fma(float(the block's exact integer dot), d_w * d_a,
// acc). Here 8 weight rows at a time: per block and activation row, 8 integer dots (lanes summed by a
// hadd tree), minus 8 * sum(a) for the level offset, one conversion and one FMA into 8 lanes (lane r =
// row j + r). asum: the activations' per-block integer sums, (m, nb).
template <class D, int MA>
void q4_0_repacked_tile(const GemmArgs& p, int64_t j, int64_t rs, int64_t i0, const int32_t* asum) {
    const int64_t nb = p.k / 32;
    // the 8 rows as two bases and a stride (row r at base[r / 4] + (r % 4) * stride): eight row pointers
    // had been spilled and reloaded for every block
    const uint8_t* base0 = static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes;
    const int64_t stride = rs * p.w_row_bytes;
    const uint8_t* base4 = base0 + 4 * stride;
    auto row = [&](int r, int64_t b) -> const block_q4_0& {
        return reinterpret_cast<const block_q4_0*>((r < 4 ? base0 : base4) + (r % 4) * stride)[b];
    };
    const GemmXRows<block_q8_0, MA> x(p, i0);
    const auto& a = x.a;
    const auto& ds = x.ds;
    __m256 acc[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i q[8];
        LOWBIT_UNROLL for (int r = 0; r < 8; ++r) q[r] = nibbles32(row(r, b).qs);
        const __m256 dw = f16_of_8<block_q4_0>([&](int r) -> const block_q4_0& { return row(r, b); });
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i][b].qs));
            __m256i v[8];
            LOWBIT_UNROLL for (int r = 0; r < 8; ++r) v[r] = D::dot4(q[r], av);
            __m256i isum = row_sums_8_small(v);
            isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * asum[(i0 + i) * nb + b]));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(ds[i][2 * b])), acc[i]);
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) store_8_rows(p, i0 + i, j, rs, acc[i]);
}

// Many rows of x: per group of 8 weight rows each block is transposed once (vector g, lane r = row r's
// levels of values 4g..4g+3), so one integer dot against a broadcast dword of x adds 4 products to each
// of the 8 outputs (ggml's own repacked layout), and the group is reused by every row of x. Same
// integer block sums, same FMA sequence per output as q4_0_repacked_tile.
template <class D, int MA>
void q4_0_transposed_tile(const GemmArgs& p, const __m256i* tq, const __m256* dw, int64_t j, int64_t rs, int64_t i0,
                          const int32_t* asum) {
    const int64_t nb = p.k / 32;
    const GemmXRows<block_q8_0, MA> x(p, i0);
    const auto& a = x.a;
    const auto& ds = x.ds;
    __m256 acc[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i t[8];  // the block's 8 transposed vectors, loaded once for the MA rows of x
        LOWBIT_UNROLL for (int g = 0; g < 8; ++g) t[g] = tq[b * 8 + g];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const int32_t* a32 = reinterpret_cast<const int32_t*>(a[i][b].qs);  // broadcast loads (no ALU uop)
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();  // two chains
            LOWBIT_UNROLL for (int g = 0; g < 8; g += 2) {
                s0 = D::dot4_add(s0, t[g], _mm256_set1_epi32(a32[g]));
                s1 = D::dot4_add(s1, t[g + 1], _mm256_set1_epi32(a32[g + 1]));
            }
            const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), _mm256_set1_epi32(8 * asum[(i0 + i) * nb + b]));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw[b], _mm256_set1_ps(ds[i][2 * b])), acc[i]);
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) store_8_rows(p, i0 + i, j, rs, acc[i]);
}

template <class D>
void gemm_q4_0_transposed(const GemmArgs& p, const int32_t* asum) {
    const int64_t nb = p.k / 32, rs = p.n / 8;
    // G groups of 8 rows transposed at a time, then every 4 rows of x pass over all G groups while they
    // sit in L1 (one group per pass had x streamed from L2 once per group)
    constexpr int64_t G = 4;
    std::vector<__m256i> tq(static_cast<size_t>(G * nb * 8));
    std::vector<__m256> dw(static_cast<size_t>(G * nb));
    for (int64_t j0 = 0; j0 < rs; j0 += G) {
        const int64_t ng = std::min(G, rs - j0);
        for (int64_t gi = 0; gi < ng; ++gi) {
            const block_q4_0* w[8];
            for (int r = 0; r < 8; ++r)
                w[r] = reinterpret_cast<const block_q4_0*>(static_cast<const uint8_t*>(p.w) +
                                                           (j0 + gi + r * rs) * p.w_row_bytes);
            for (int64_t b = 0; b < nb; ++b) {
                __m256i v[8];
                for (int r = 0; r < 8; ++r) v[r] = nibbles32(w[r][b].qs);
                transpose8x8_epi32(v);
                for (int g = 0; g < 8; ++g) tq[(gi * nb + b) * 8 + g] = v[g];
                dw[gi * nb + b] = f16_of_8_rows(w, b);
            }
        }
        int64_t i0 = 0;
        for (; i0 + 8 <= p.m; i0 += 8)
            for (int64_t gi = 0; gi < ng; ++gi)
                q4_0_transposed_tile<D, 8>(p, tq.data() + gi * nb * 8, dw.data() + gi * nb, j0 + gi, rs, i0, asum);
        for (; i0 < p.m; ++i0)
            for (int64_t gi = 0; gi < ng; ++gi)
                q4_0_transposed_tile<D, 1>(p, tq.data() + gi * nb * 8, dw.data() + gi * nb, j0 + gi, rs, i0, asum);
    }
}

// The integer sum of each q8_0 block of x's quants (q4_0's level offset 8 comes off as 8 * sum): (m, nb).
template <class D>
std::vector<int32_t> q8_0_block_sums(const GemmArgs& p) {
    const int64_t nb = p.k / 32;
    std::vector<int32_t> asum(static_cast<size_t>(p.m * nb));
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < p.m; ++i) {
        const auto* a = reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(p.a) + i * p.a_row_bytes);
        for (int64_t b = 0; b < nb; ++b) {
            const __m256i s4 = D::dot4(ones8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs)));
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
            asum[i * nb + b] = _mm_cvtsi128_si32(s);
        }
    }
    return asum;
}

template <class D>
void gemm_q4_0_repacked_order(const GemmArgs& p) {
    const std::vector<int32_t> asum = q8_0_block_sums<D>(p);
    if (p.m >= 8) return gemm_q4_0_transposed<D>(p, asum.data());
    // A tile's 8 rows are j, j + s, ..., j + 7s (s = n/8): 8 long sequential streams. Eight neighbouring
    // rows (SmolLM2's are 324 bytes) read block by block defeated the prefetcher: 2x slower from DRAM.
    const int64_t rs = p.n / 8;
    constexpr int64_t kChunk = 8;  // j values per chunk: 64 rows that stay in L2 while the rows of x pass
    for (int64_t j0 = 0; j0 < rs; j0 += kChunk) {
        const int64_t j1 = std::min(rs, j0 + kChunk);
        for (int64_t i0 = 0; i0 < p.m; i0 += 4)
            for (int64_t j = j0; j < j1; ++j) switch (std::min<int64_t>(4, p.m - i0)) {
                    case 1: q4_0_repacked_tile<D, 1>(p, j, rs, i0, asum.data()); break;
                    case 2: q4_0_repacked_tile<D, 2>(p, j, rs, i0, asum.data()); break;
                    case 3: q4_0_repacked_tile<D, 3>(p, j, rs, i0, asum.data()); break;
                    default: q4_0_repacked_tile<D, 4>(p, j, rs, i0, asum.data()); break;
                }
    }
}

// q8_0 against several rows of x with VNNI: vpdpbusd wants unsigned bytes on one side, so x's quants
// get + 128 (xor 0x80, once per block and row of x) and each weight block's lane sums times -128 seed
// the integer accumulator: seed + sum((a + 128) w) = sum(a w) exactly, one instruction per pair of rows
// (the sign trick needs two). Same lanes, same FMA sequence per output as ggml_order_tile.
template <class D, int RW, int MA>
void q8_0_vnni_tile(const GemmArgs& p, int64_t j, int64_t i0) {
    static_assert(RW <= 4, "the d_w * d_a table holds 4 rows");
    const int64_t nb = p.k / 32, wrb = p.w_row_bytes, arb = p.a_row_bytes, dss = nb * 2;
    // one base pointer per operand (and a stride), not one per row: 12 row pointers spilled to the stack
    const uint8_t* wb = static_cast<const uint8_t*>(p.w) + j * wrb;
    const uint8_t* ab = static_cast<const uint8_t*>(p.a) + i0 * arb;
    const float* dsb = p.a_ds + i0 * dss;
    __m256 acc[RW][MA];
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[r][i] = _mm256_setzero_ps();
    const __m256i ones8 = _mm256_set1_epi8(1), flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t b = 0; b < nb; ++b) {
        const int64_t off = b * static_cast<int64_t>(sizeof(block_q8_0));
        __m256i au[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
            au[i] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + i * arb + off + 2)), flip);
        // d_w * d_a for the RW x MA pairs: one 4-wide multiply per row of x, stored whole and read back by
        // broadcast loads (load ports, not the pipes the dot products and FMAs need)
        alignas(16) float dd[MA][4];
        {
            // the RW halves gathered in a general register and converted at once: four scalar stores
            // reloaded as one vector missed store forwarding, a stall per block (m = 2: 20x slower)
            uint64_t halves = 0;
            LOWBIT_UNROLL for (int r = 0; r < RW; ++r) {
                uint16_t h;
                std::memcpy(&h, wb + r * wrb + off, 2);
                halves |= static_cast<uint64_t>(h) << (16 * r);
            }
            const __m128 dwv = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(halves)));
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) _mm_store_ps(dd[i], _mm_mul_ps(dwv, _mm_set1_ps(dsb[i * dss + 2 * b])));
        }
        LOWBIT_UNROLL for (int r = 0; r < RW; ++r) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + r * wrb + off + 2));
            const __m256i seed = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(D::dot4(ones8, q), 7));
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const __m256i prod = D::dot4_add(seed, au[i], q);
                acc[r][i] = _mm256_fmadd_ps(_mm256_broadcast_ss(&dd[i][r]), _mm256_cvtepi32_ps(prod), acc[r][i]);
            }
        }
    }
    LOWBIT_UNROLL for (int r = 0; r < RW; ++r)
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) p.c[(i0 + i) * p.ldc + j + r] = hsum_ps(acc[r][i]);
}

template <class D>
void gemm_q8_0_vnni(const GemmArgs& p) {
    constexpr int64_t kChunk = 64;
    for (int64_t j0 = 0; j0 < p.n; j0 += kChunk) {
        const int64_t j1 = std::min(p.n, j0 + kChunk);
        int64_t i0 = 0;
        for (; i0 + 4 <= p.m; i0 += 4) {
            int64_t j = j0;
            for (; j + 4 <= j1; j += 4) q8_0_vnni_tile<D, 4, 4>(p, j, i0);
            for (; j < j1; ++j) q8_0_vnni_tile<D, 1, 4>(p, j, i0);
        }
        for (; i0 < p.m; ++i0)
            for (int64_t j = j0; j < j1; ++j) q8_0_vnni_tile<D, 1, 1>(p, j, i0);
    }
}

// q8_0 / q4_1 against many rows of x, transposed like q4_0 above: per group of 8 weight rows each block
// becomes 8 vectors (vector g, lane r = row r's bytes 4g..4g+3), so one integer dot against a broadcast
// dword of x is lane g of 8 outputs at once. The 8 lane accumulators of ggml's order are then 8
// registers (register g = lane g of the 8 outputs), each block adds fma(d_w*d_a, float(lane sum), .)
// to each, and the final pairwise sum of the lanes runs across registers: g + (g+4), then 0+2 / 1+3,
// then 0+1 (ggml's hsum_float_8), all 8 outputs at a time. q8_0's signed weights meet x + 128 (x's
// quants flipped once per call) with the integer accumulators seeded by -128 x the weights' lane sums;
// q4_1's levels are unsigned already, and its m_w * s_a terms add up lane-wise per block.
template <class T>
struct TransposedGroup {  // one group of 8 weight rows, all blocks
    std::vector<__m256i> q, seed;  // (nb * 8) each; seed only for q8_0
    std::vector<__m256> d, m;      // (nb) lane r = row r's d (and m for q4_1)
};

template <class D, class T>
void transpose_group(const GemmArgs& p, int64_t j, int64_t rs, TransposedGroup<T>& tg) {
    const int64_t nb = p.k / 32;
    const typename T::W* w[8];
    for (int r = 0; r < 8; ++r)
        w[r] = reinterpret_cast<const typename T::W*>(static_cast<const uint8_t*>(p.w) + (j + r * rs) * p.w_row_bytes);
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; ++b) {
        __m256i v[8];
        for (int r = 0; r < 8; ++r) {
            if constexpr (T::kSigned)
                v[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r][b].qs));
            else
                v[r] = T::levels(w[r][b]);
        }
        transpose8x8_epi32(v);
        for (int g = 0; g < 8; ++g) {
            tg.q[b * 8 + g] = v[g];
            if constexpr (T::kSigned)  // -128 x each lane's sum of the 4 weights
                tg.seed[b * 8 + g] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(D::dot4(ones8, v[g]), 7));
        }
        tg.d[b] = f16_of_8_rows(w, b);
        if constexpr (T::kMin) tg.m[b] = f16_of_8_rows<typename T::W, &T::W::m>(w, b);
    }
}

template <class D, class T, int MA>
void vec_dot_transposed_tile(const GemmArgs& p, const TransposedGroup<T>& tg, const uint8_t* xq, int64_t j, int64_t rs,
                             int64_t i0) {
    const int64_t nb = p.k / 32;
    const GemmXRows<typename T::A, MA> x(p, i0);
    const auto& ds = x.ds;
    __m256 acc[MA][8], summs[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        summs[i] = _mm256_setzero_ps();
        LOWBIT_UNROLL for (int g = 0; g < 8; ++g) acc[i][g] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
        __m256i tq[8];
        LOWBIT_UNROLL for (int g = 0; g < 8; ++g) tq[g] = tg.q[b * 8 + g];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            // q8_0: the flipped copy; q4_1: x's own quants
            const int32_t* a32 = reinterpret_cast<const int32_t*>(T::kSigned ? static_cast<const void*>(xq + ((i0 + i) * nb + b) * 32) : static_cast<const void*>(x.a[i][b].qs));
            const __m256 dd = _mm256_mul_ps(tg.d[b], _mm256_set1_ps(ds[i][2 * b]));
            LOWBIT_UNROLL for (int g = 0; g < 8; ++g) {
                const __m256i seed = T::kSigned ? tg.seed[b * 8 + g] : _mm256_setzero_si256();
                const __m256i lane = D::dot4_add(seed, T::kSigned ? _mm256_set1_epi32(a32[g]) : tq[g],
                                                 T::kSigned ? tq[g] : _mm256_set1_epi32(a32[g]));
                acc[i][g] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(lane), acc[i][g]);
            }
            if constexpr (T::kMin) summs[i] = _mm256_add_ps(summs[i], _mm256_mul_ps(tg.m[b], _mm256_set1_ps(ds[i][2 * b + 1])));
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        __m256 s[4];
        LOWBIT_UNROLL for (int g = 0; g < 4; ++g) s[g] = _mm256_add_ps(acc[i][g + 4], acc[i][g]);
        const __m256 u0 = _mm256_add_ps(s[0], s[2]), u1 = _mm256_add_ps(s[1], s[3]);
        store_8_rows(p, i0 + i, j, rs, _mm256_add_ps(_mm256_add_ps(u0, u1), summs[i]));
    }
}

// rows % 8 == 0 (the caller checks): 8-row groups j, j + n/8, ...; for q8_0 x's quants copied out
// flipped by 128, (m, nb, 32) (q4_1 reads x's blocks as they are).
template <class D, class T>
void gemm_vec_dot_transposed(const GemmArgs& p) {
    const int64_t nb = p.k / 32, rs = p.n / 8;
    std::vector<uint8_t> xq(T::kSigned ? static_cast<size_t>(p.m * nb * 32) : 0);
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t i = 0; T::kSigned && i < p.m; ++i) {
        const auto* a = reinterpret_cast<const typename T::A*>(static_cast<const uint8_t*>(p.a) + i * p.a_row_bytes);
        for (int64_t b = 0; b < nb; ++b)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq.data() + (i * nb + b) * 32),
                                _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs)), flip));
    }
    TransposedGroup<T> tg;
    tg.q.resize(static_cast<size_t>(nb * 8));
    if (T::kSigned) tg.seed.resize(static_cast<size_t>(nb * 8));
    tg.d.resize(static_cast<size_t>(nb));
    if (T::kMin) tg.m.resize(static_cast<size_t>(nb));
    for (int64_t j = 0; j < rs; ++j) {
        transpose_group<D, T>(p, j, rs, tg);
        int64_t i0 = 0;
        for (; i0 + 2 <= p.m; i0 += 2) vec_dot_transposed_tile<D, T, 2>(p, tg, xq.data(), j, rs, i0);
        for (; i0 < p.m; ++i0) vec_dot_transposed_tile<D, T, 1>(p, tg, xq.data(), j, rs, i0);
    }
}

// One activation row (decode): the rows are cut into 4 contiguous quarters walked side by side, so each
// of the 4 FMA chains reads one long sequential stream (interleaving neighbouring rows of SmolLM2's
// 612-byte q8_0 rows left the hardware prefetcher untrained: 3x slower than one row at a time).
template <class D, class T>
void gemv_ggml_order(const GemmArgs& p) {
    constexpr int RW = 4;
    const int64_t quarter = p.n / RW;
    for (int64_t j = 0; j < quarter; ++j) ggml_order_tile<D, T, RW, 1>(p, j, 0, quarter);
    for (int64_t j = RW * quarter; j < p.n; ++j) ggml_order_tile<D, T, 1, 1>(p, j, 0);
}

// Weight rows in chunks that stay in L2 while the activation rows pass over them, 4 at a time.
template <class D, class T>
void gemm_ggml_order(const GemmArgs& p) {
    if (p.m == 1) return gemv_ggml_order<D, T>(p);
    if constexpr (D::kVnni && (std::is_same_v<T, GoQ8_0> || std::is_same_v<T, GoQ4_1>))
        if (p.m >= 8 && p.n % 8 == 0) return gemm_vec_dot_transposed<D, T>(p);  // q4_1 1.8x, q8_0 1.2x faster
    if constexpr (D::kVnni && std::is_same_v<T, GoQ8_0>) return gemm_q8_0_vnni<D>(p);
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

namespace lowbit {
namespace {
// q4_0: llama.cpp's repacked order where it repacks (rows a multiple of 8; every thread's slice is then
// a multiple of 8 too: the driver cuts rows in units of 16), ggml_vec_dot_q4_0_q8_0's order elsewhere.
template <class D>
void gemm_ggml_order_q4_0_any(const GemmArgs& p) {
    if (p.n_all % 8 == 0 && p.n % 8 == 0)
        gemm_q4_0_repacked_order<D>(p);
    else
        gemm_ggml_order<D, GoQ4_0>(p);
}
}  // namespace
}  // namespace lowbit
