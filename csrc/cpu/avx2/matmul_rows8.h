// q4_0 and q4_1 matmul on the rows8 layout (core/rows8.h): 8 weight rows per 8 lanes, read as one
// stream. Same bits as the row-major kernels of matmul_ggml_order.h (llama.cpp's orders), which the
// tests check for every ISA.
//
// A rows8 block of 8 rows holds their d (and m) side by side, then 4 chunks of 32 bytes: chunk c is the
// 8 rows' quant bytes 4c..4c+3, so one load and a nibble split give two vectors whose lane r holds row
// r's levels of values 4c..4c+3 (low nibbles) and 16+4c..16+4c+3 (high): the transposed vectors that
// the row-major GEMM builds per call with a transpose (ggml's repacked layout), here made once at load.
// One integer dot of such a vector against a broadcast dword of x adds 4 products to 8 outputs: per 256
// weights 4 loads, 12 nibble ops and 8 dots, where the row-major decode tile needs a horizontal sum of
// 8 lanes per row and block (1 thread, 4096 x 4096 q4_0 m = 1 in cache: 25 -> ~50 GB/s).
//
// Every m: each group's blocks are unpacked in registers and dotted with up to MA rows of x, the group
// met by all rows of x while it sits in L1. Unpacking it once into the transposed form and running the
// row-major GEMM's tiles on that (tried) was 0-25% slower at every m from 8 to 512.
// Compiled by the AVX2 and the AVX-512 VNNI files with their dot policy D.
#pragma once
#include "../../core/rows8.h"
#include "matmul_ggml_order.h"

// The small helpers of the tiles, inlined whatever GCC's unit-growth budget says: with several tiles in
// one unit it had stopped inlining them (a call per chunk: q4_0 28672 x 4096 m = 4 5.3 -> 8.6 ms, q6_K
// m = 1 5x slower).
#define LOWBIT_ROWS8_INLINE inline __attribute__((always_inline))

namespace lowbit {
namespace {

// The two level vectors of chunk c of a rows8 block: lane r = row r's levels of values 4c..4c+3 / 16+4c...
struct Rows8Chunk {
    __m256i lo, hi;
};
LOWBIT_ROWS8_INLINE Rows8Chunk rows8_nibbles(const uint8_t* chunk) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk));
    const __m256i low = _mm256_set1_epi8(0x0F);
    return {_mm256_and_si256(q, low), _mm256_and_si256(_mm256_srli_epi16(q, 4), low)};
}
LOWBIT_ROWS8_INLINE __m256 rows8_f16x8(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
LOWBIT_ROWS8_INLINE __m256i bcast_dword(const int8_t* qs, int i) {
    int32_t v;
    std::memcpy(&v, qs + 4 * i, 4);
    return _mm256_set1_epi32(v);
}

// A tile for several rows of x spends long enough on each block that the loads in flight no longer cover
// DRAM's latency, and the hardware prefetcher did not make up for it on this one stream: q4_0 28672 x
// 4096 m = 4 from DRAM took 8.2 ms where the same tile in cache would take 3.7. Prefetching the block a
// page ahead: 4.6 ms. One row of x keeps so many loads in flight by itself that the prefetches only
// cost (m = 1: 1.87 -> 2.2 ms), and passes after the first over a group (more rows of x than a tile
// takes) find it in L1: only the first pass of a call with several rows prefetches. A compile-time
// switch (kOn): under a run-time flag GCC dropped the prefetches from the AVX-512 build altogether.
template <bool kOn, int64_t kBytes>
LOWBIT_ROWS8_INLINE void rows8_prefetch(const uint8_t* blk) {
    if constexpr (kOn)
        LOWBIT_UNROLL for (int64_t o = 0; o < kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(blk + 4096 + o), _MM_HINT_T0);
}

// q4_0, group g (rows 8g..8g+7) against rows i0..i0+MA-1 of x: llama.cpp's repacked order, one float
// accumulator per output (q4_0_repacked_tile's arithmetic). asum: x's block sums (q8_0_block_sums).
template <class D, int MA, bool kPrefetch>
void rows8_q4_0_tile(const GemmArgs& p, int64_t g, int64_t i0, const int32_t* asum) {
    constexpr int64_t kBlock = 8 * sizeof(block_q4_0);
    const int64_t nb = p.k / 32;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const GemmXRows<block_q8_0, MA> x(p, i0);
    __m256 acc[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch<kPrefetch, kBlock>(blk);
        __m256i s0[MA], s1[MA];  // two chains per row of x
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) s0[i] = s1[i] = _mm256_setzero_si256();
        LOWBIT_UNROLL for (int c = 0; c < 4; ++c) {
            const Rows8Chunk q = rows8_nibbles(blk + 16 + 32 * c);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                s0[i] = D::dot4_add(s0[i], q.lo, bcast_dword(x.a[i][b].qs, c));
                s1[i] = D::dot4_add(s1[i], q.hi, bcast_dword(x.a[i][b].qs, c + 4));
            }
        }
        const __m256 dw = rows8_f16x8(blk);
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(s0[i], s1[i]), _mm256_set1_epi32(8 * asum[(i0 + i) * nb + b]));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(x.ds[i][2 * b])), acc[i]);
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) _mm256_storeu_ps(p.c + (i0 + i) * p.ldc + 8 * g, acc[i]);
}

// q4_1, group g against rows i0..i0+MA-1: ggml's vec_dot order, lane l of each output in register l
// (8 rows in its lanes), pairwise lane sums at the end, the min terms added last
// (vec_dot_transposed_tile's arithmetic).
template <class D, int MA, bool kPrefetch>
void rows8_q4_1_tile(const GemmArgs& p, int64_t g, int64_t i0) {
    constexpr int64_t kBlock = 8 * sizeof(block_q4_1);
    const int64_t nb = p.k / 32;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const GemmXRows<block_q8_1, MA> x(p, i0);
    __m256 acc[MA][8], summs[MA];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        summs[i] = _mm256_setzero_ps();
        LOWBIT_UNROLL for (int l = 0; l < 8; ++l) acc[i][l] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch<kPrefetch, kBlock>(blk);
        const __m256 d8 = rows8_f16x8(blk), m8 = rows8_f16x8(blk + 16);
        __m256 dd[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
            dd[i] = _mm256_mul_ps(d8, _mm256_set1_ps(x.ds[i][2 * b]));
            summs[i] = _mm256_add_ps(summs[i], _mm256_mul_ps(m8, _mm256_set1_ps(x.ds[i][2 * b + 1])));
        }
        LOWBIT_UNROLL for (int c = 0; c < 4; ++c) {
            const Rows8Chunk q = rows8_nibbles(blk + 32 + 32 * c);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const __m256i lo = D::dot4(q.lo, bcast_dword(x.a[i][b].qs, c));
                const __m256i hi = D::dot4(q.hi, bcast_dword(x.a[i][b].qs, c + 4));
                acc[i][c] = _mm256_fmadd_ps(dd[i], _mm256_cvtepi32_ps(lo), acc[i][c]);
                acc[i][c + 4] = _mm256_fmadd_ps(dd[i], _mm256_cvtepi32_ps(hi), acc[i][c + 4]);
            }
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        __m256 s[4];
        LOWBIT_UNROLL for (int l = 0; l < 4; ++l) s[l] = _mm256_add_ps(acc[i][l + 4], acc[i][l]);
        const __m256 u0 = _mm256_add_ps(s[0], s[2]), u1 = _mm256_add_ps(s[1], s[3]);
        _mm256_storeu_ps(p.c + (i0 + i) * p.ldc + 8 * g, _mm256_add_ps(_mm256_add_ps(u0, u1), summs[i]));
    }
}

// q8_0, group g against rows i0..i0+MA-1: ggml's vec_dot order as q4_1 (chunk l of a block is lane l of
// its 8 outputs), no min terms. With VNNI the weights go in as w + 128 (xor 0x80, vpdpbusd's unsigned
// side) against x's signed quants, each lane seeded with -128 x the sum of x's 4 quants it meets
// (seeds: (m, nb, 8), q8_0_lane_seeds): sum((w + 128) a) - 128 sum(a) = sum(w a), exactly. AVX2's
// maddubs would saturate on w + 128, so there |w| meets sign(a, w).
template <class D, int MA, bool kPrefetch>
void rows8_q8_0_tile(const GemmArgs& p, int64_t g, int64_t i0, const int32_t* seeds) {
    constexpr int64_t kBlock = 8 * sizeof(block_q8_0);
    constexpr bool kSeeded = D::kVnni && MA > 1;
    const int64_t nb = p.k / 32;
    const uint8_t* grp = static_cast<const uint8_t*>(p.w) + g * 8 * p.w_row_bytes;
    const GemmXRows<block_q8_0, MA> x(p, i0);
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    __m256 acc[MA][8];
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i)
        LOWBIT_UNROLL for (int l = 0; l < 8; ++l) acc[i][l] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kBlock;
        rows8_prefetch<kPrefetch, kBlock>(blk);
        const __m256 d8 = rows8_f16x8(blk);
        __m256 dd[MA];
        LOWBIT_UNROLL for (int i = 0; i < MA; ++i) dd[i] = _mm256_mul_ps(d8, _mm256_set1_ps(x.ds[i][2 * b]));
        LOWBIT_UNROLL for (int l = 0; l < 8; ++l) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * l));
            const __m256i wu = kSeeded ? _mm256_xor_si256(w, flip) : _mm256_abs_epi8(w);
            LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
                const __m256i a = bcast_dword(x.a[i][b].qs, l);
                const __m256i lane = kSeeded
                    ? D::dot4_add(_mm256_set1_epi32(seeds[((i0 + i) * nb + b) * 8 + l]), wu, a)
                    : D::dot4(wu, _mm256_sign_epi8(a, w));
                acc[i][l] = _mm256_fmadd_ps(dd[i], _mm256_cvtepi32_ps(lane), acc[i][l]);
            }
        }
    }
    LOWBIT_UNROLL for (int i = 0; i < MA; ++i) {
        __m256 s[4];
        LOWBIT_UNROLL for (int l = 0; l < 4; ++l) s[l] = _mm256_add_ps(acc[i][l + 4], acc[i][l]);
        const __m256 u0 = _mm256_add_ps(s[0], s[2]), u1 = _mm256_add_ps(s[1], s[3]);
        _mm256_storeu_ps(p.c + (i0 + i) * p.ldc + 8 * g, _mm256_add_ps(u0, u1));
    }
}

// -128 x the sum of each 4 quants of x (lane l of block b: quants 4l..4l+3), (m, nb, 8): rows8_q8_0_tile's seeds.
template <class D>
std::vector<int32_t> q8_0_lane_seeds(const GemmArgs& p) {
    const int64_t nb = p.k / 32;
    std::vector<int32_t> out(static_cast<size_t>(p.m * nb * 8));
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < p.m; ++i) {
        const auto* a = reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(p.a) + i * p.a_row_bytes);
        for (int64_t b = 0; b < nb; ++b) {
            const __m256i s = D::dot4(ones8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + (i * nb + b) * 8),
                                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, 7)));
        }
    }
    return out;
}

// Each group meets the rows of x up to MA at a time (the last pass takes what is left) while its ~8
// row-lengths of bytes sit in L1.
template <int MA, class Tile>
void rows8_by_groups(const GemmArgs& p, Tile tile) {
    static_assert(MA >= 1 && MA <= 4, "decode tiles take 1 to 4 rows of x");
    using On = std::true_type;
    using Off = std::false_type;
    for (int64_t g = 0; g < p.n / 8; ++g)
        for (int64_t i0 = 0; i0 < p.m; i0 += MA) {
            const int64_t ma = std::min<int64_t>(MA, p.m - i0);
            if (i0 == 0 && p.m > 1) {  // the first of several passes: prefetch (rows8_prefetch)
                if (ma == 1) tile(std::integral_constant<int, 1>{}, On{}, g, i0);
                if constexpr (MA >= 2) if (ma == 2) tile(std::integral_constant<int, 2>{}, On{}, g, i0);
                if constexpr (MA >= 3) if (ma == 3) tile(std::integral_constant<int, 3>{}, On{}, g, i0);
                if constexpr (MA >= 4) if (ma == 4) tile(std::integral_constant<int, 4>{}, On{}, g, i0);
            } else {
                if (ma == 1) tile(std::integral_constant<int, 1>{}, Off{}, g, i0);
                if constexpr (MA >= 2) if (ma == 2) tile(std::integral_constant<int, 2>{}, Off{}, g, i0);
                if constexpr (MA >= 3) if (ma == 3) tile(std::integral_constant<int, 3>{}, Off{}, g, i0);
                if constexpr (MA >= 4) if (ma == 4) tile(std::integral_constant<int, 4>{}, Off{}, g, i0);
            }
        }
}

// Rows of x a decode tile takes at once: AVX2's 16 vector registers hold q4_1's 8 lane accumulators for
// one row, AVX-512's 32 for two.
template <class D>
constexpr int kRows8DecodeQ4_0 = D::kVnni ? 4 : 2;
template <class D>
constexpr int kRows8DecodeQ4_1 = D::kVnni ? 2 : 1;  // q8_0's tile too

template <class D>
void gemm_rows8_q4_0(const GemmArgs& p) {
    const std::vector<int32_t> asum = q8_0_block_sums<D>(p);
    rows8_by_groups<kRows8DecodeQ4_0<D>>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q4_0_tile<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0, asum.data());
    });
}

template <class D>
void gemm_rows8_q4_1(const GemmArgs& p) {
    rows8_by_groups<kRows8DecodeQ4_1<D>>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q4_1_tile<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0);
    });
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

template <class D>
void gemm_rows8_q8_0(const GemmArgs& p) {
    const std::vector<int32_t> seeds = D::kVnni ? q8_0_lane_seeds<D>(p) : std::vector<int32_t>();
    rows8_by_groups<kRows8DecodeQ4_1<D>>(p, [&](auto ma, auto pf, int64_t g, int64_t i0) {
        rows8_q8_0_tile<D, decltype(ma)::value, decltype(pf)::value>(p, g, i0, seeds.data());
    });
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// rows8 -> row-major for n rows (the unpacking fallback's copy, gemm_rows8_unpacked): byte arrays of 8+
// chunks go 8 chunks at a time through an 8 x 8 dword transpose (8 rows' 32 consecutive bytes each),
// the rest by 2- and 4-byte moves. The same bytes as unpack_rows8.
inline void unpack_rows8_simd(QType t, const void* src, void* dst, int64_t n, int64_t k) {
    const int* sizes = nullptr;
    const int nf = rows8_fields(t, &sizes);
    const TypeInfo& ti = type_info(t);
    const int64_t nb = k / ti.block_size, rb = row_bytes(ti, k), bs = ti.type_size;
    const auto* in = static_cast<const uint8_t*>(src);
    auto* out = static_cast<uint8_t*>(dst);
    for (int64_t g = 0; g < n / 8; ++g)
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* g8 = in + (g * nb + b) * 8 * bs;
            uint8_t* row0 = out + g * 8 * rb + b * bs;
            int off = 0;
            for (int f = 0; f < nf; ++f) {
                const int s = sizes[f];
                const uint8_t* packed = g8 + 8 * off;
                if (s == 2) {
                    for (int r = 0; r < 8; ++r) std::memcpy(row0 + r * rb + off, packed + 2 * r, 2);
                } else {
                    int c = 0;
                    for (; c + 8 <= s / 4; c += 8) {
                        __m256i v[8];
                        for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + 32 * (c + i)));
                        transpose8x8_epi32(v);  // v[r]: row r's chunks c..c+7
                        for (int r = 0; r < 8; ++r) _mm256_storeu_si256(reinterpret_cast<__m256i*>(row0 + r * rb + off + 4 * c), v[r]);
                    }
                    for (; c < s / 4; ++c)
                        for (int r = 0; r < 8; ++r) std::memcpy(row0 + r * rb + off + 4 * c, packed + 32 * c + 4 * r, 4);
                }
                off += s;
            }
        }
}

}  // namespace
}  // namespace lowbit
