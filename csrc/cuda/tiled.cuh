// The "tile8" device layout of q4_0, q4_1 and q8_0, made once by .to("cuda") (tile8_pack) when k % 256 == 0.
// The same bytes as the GGUF row, reordered within each run of 8 blocks (a tile of 256 weights): the 8
// blocks' scale fields first (q4_0 / q8_0: d; q4_1: d, m), then their 8 quant arrays:
//
//   q4_0: [d0 .. d7: 16 B][qs0 .. qs7: 8 x 16 B]   = 144 B
//   q4_1: [d0 m0 .. d7 m7: 32 B][qs0 .. qs7: 128 B] = 160 B
//   q8_0: [d0 .. d7: 16 B][qs0 .. qs7: 8 x 32 B]   = 272 B
//
// Why: GGUF blocks of 18, 20 or 34 bytes leave every quant array only 2-byte aligned, so a GPU lane takes
// its 16 or 32 quant bytes in 2-byte pieces. In a tile every quant array starts on a 16-byte boundary
// (tiles are 16-byte multiples, and so are rows of whole tiles), so a lane reads a block's quants with
// one or two 16-byte loads. Row size, and so memory use, is unchanged; the permutation is undone by
// tile8_unpack for .to("cpu").
//
// Each Format here is the GGUF format's decode16 / load_unit / load_mma_words over this addressing, so
// every kernel template (dequantize, gemv_f32, gemv_q8, gemm, mma) runs on it unchanged, plus load_raw /
// to_unit for gemv_stream.cuh (the 16-byte loads first, the decode later).
#pragma once
#include <cstddef>
#include <cstring>

#include "../core/blocks.h"
#include "gemv_q8.cuh"

namespace lowbit::cuda {

constexpr int kTileUnits = 8;     // blocks (32-weight units) per tile: kTileWeights (kernels.h) / 32
static_assert(kTileUnits * 32 == kTileWeights, "a tile is 8 blocks of 32 weights");

// Addressing of a tile8 row made of blocks with kParam bytes of scales and kQs bytes of quants.
template <int kParam, int kQs>
struct Tile8 {
    static constexpr int kTileBytes = kTileUnits * (kParam + kQs);
    LOWBIT_HD static const uint8_t* params(const uint8_t* row, int64_t u) {
        return row + (u >> 3) * kTileBytes + (u & 7) * kParam;
    }
    LOWBIT_HD static const uint8_t* quants(const uint8_t* row, int64_t u) {
        return row + (u >> 3) * kTileBytes + kTileUnits * kParam + (u & 7) * kQs;
    }
    // GGUF row (blocks of [params][quants]) <-> tile8 row; k % 256 == 0.
    static void pack_row(const uint8_t* gguf, uint8_t* tiled, int64_t k) {
        for (int64_t u = 0; u < k / 32; ++u) {
            const uint8_t* b = gguf + u * (kParam + kQs);
            memcpy(const_cast<uint8_t*>(params(tiled, u)), b, kParam);
            memcpy(const_cast<uint8_t*>(quants(tiled, u)), b + kParam, kQs);
        }
    }
    static void unpack_row(const uint8_t* tiled, uint8_t* gguf, int64_t k) {
        for (int64_t u = 0; u < k / 32; ++u) {
            uint8_t* b = gguf + u * (kParam + kQs);
            memcpy(b, params(tiled, u), kParam);
            memcpy(b + kParam, quants(tiled, u), kQs);
        }
    }
};

// 16 bytes at p (16-byte aligned) as one vector load on the device. kGlobal: p is read-only global
// memory (ld.global.nc, what gemv_stream reads); otherwise a generic load, since the staged kernels
// (gemv_async, mma_async) call load_unit on shared memory.
template <bool kGlobal = false>
LOWBIT_HD uint4 load_16_a16(const uint8_t* p) {
#ifdef __CUDA_ARCH__
    if constexpr (kGlobal) return __ldg(reinterpret_cast<const uint4*>(p));
    else return *reinterpret_cast<const uint4*>(p);
#else
    uint4 v;
    memcpy(&v, p, 16);
    return v;
#endif
}

// 4 nibble words -> 8 dp4a words (low nibbles = weights 0-15, high = 16-31: ggml's q4 order)
LOWBIT_HD void nibbles_to_unit(const uint4& q, Unit32& out) {
    const uint32_t v[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out.w[i] = int(v[i] & 0x0F0F0F0Fu);
        out.w[4 + i] = int((v[i] >> 4) & 0x0F0F0F0Fu);
    }
}

// load_unit (what the GGUF-layout kernels call, possibly on shared memory) from a format's load_raw /
// to_unit: the same decode for every tile8 format, written once.
template <class F>
struct TileUnit {
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        typename F::Raw r;
        F::template load_raw<false>(row, u, r);
        F::to_unit(r, out);
    }
};

struct FormatQ4_0T : TileUnit<FormatQ4_0T> {
    using L = Tile8<2, 16>;
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 4 * L::kTileBytes;  // 32 units = 4 tiles, contiguous
    static constexpr int kStreamUnroll = 4;              // gemv_stream: units a lane loads per step
    struct Raw {
        uint4 q;
        uint32_t p;  // d (f16 bits)
    };
    // kGlobal: row is in global memory (gemv_stream); load_unit may read shared memory
    template <bool kGlobal = true>
    LOWBIT_HD static void load_raw(const uint8_t* row, int64_t u, Raw& r) {
        r.q = load_16_a16<kGlobal>(L::quants(row, u));
        r.p = load_u16(L::params(row, u));
    }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) {
        nibbles_to_unit(r.q, out);
        const float d = fp16_bits_to_f32(uint16_t(r.p));
        out.scale = d;
        out.offset = -8.f * d;
    }
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const float d = fp16_bits_to_f32(load_u16(L::params(row, c >> 1)));
        const uint8_t* qs = L::quants(row, c >> 1);
        const int shift = (c & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = float(((qs[i] >> shift) & 0xF) - 8) * d;
    }
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint32_t v = *reinterpret_cast<const uint32_t*>(L::quants(row, u) + 4 * t);
        lo = int(v & 0x0F0F0F0Fu);
        hi = int((v >> 4) & 0x0F0F0F0Fu);
        scale = fp16_bits_to_f32(load_u16(L::params(row, u)));
        offset = -8.f * scale;
    }
};

struct FormatQ4_1T : TileUnit<FormatQ4_1T> {
    using L = Tile8<4, 16>;
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 4 * L::kTileBytes;
    static constexpr int kStreamUnroll = 4;
    struct Raw {
        uint4 q;
        uint32_t p;  // d | m << 16 (f16 bits)
    };
    template <bool kGlobal = true>
    LOWBIT_HD static void load_raw(const uint8_t* row, int64_t u, Raw& r) {
        r.q = load_16_a16<kGlobal>(L::quants(row, u));
        r.p = *reinterpret_cast<const uint32_t*>(L::params(row, u));  // 4-byte aligned: 4 * (u % 8)
    }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) {
        nibbles_to_unit(r.q, out);
        out.scale = fp16_bits_to_f32(uint16_t(r.p));
        out.offset = fp16_bits_to_f32(uint16_t(r.p >> 16));
    }
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* p = L::params(row, c >> 1);
        const float d = fp16_bits_to_f32(load_u16(p)), m = fp16_bits_to_f32(load_u16(p + 2));
        const uint8_t* qs = L::quants(row, c >> 1);
        const int shift = (c & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = add_rn(mul_rn(float((qs[i] >> shift) & 0xF), d), m);
    }
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint32_t v = *reinterpret_cast<const uint32_t*>(L::quants(row, u) + 4 * t);
        lo = int(v & 0x0F0F0F0Fu);
        hi = int((v >> 4) & 0x0F0F0F0Fu);
        const uint8_t* p = L::params(row, u);
        scale = fp16_bits_to_f32(load_u16(p));
        offset = fp16_bits_to_f32(load_u16(p + 2));
    }
};

struct FormatQ8_0T : TileUnit<FormatQ8_0T> {
    using L = Tile8<2, 32>;
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 4 * L::kTileBytes;
    static constexpr int kStreamUnroll = 2;  // 32 quant bytes a unit: the same bytes in flight as 4-bit x 4
    struct Raw {
        uint4 q[2];
        uint32_t p;
    };
    template <bool kGlobal = true>
    LOWBIT_HD static void load_raw(const uint8_t* row, int64_t u, Raw& r) {
        const uint8_t* qs = L::quants(row, u);
        r.q[0] = load_16_a16<kGlobal>(qs);
        r.q[1] = load_16_a16<kGlobal>(qs + 16);
        r.p = load_u16(L::params(row, u));
    }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) {
        const uint32_t v[8] = {r.q[0].x, r.q[0].y, r.q[0].z, r.q[0].w, r.q[1].x, r.q[1].y, r.q[1].z, r.q[1].w};
#pragma unroll
        for (int i = 0; i < 8; ++i) out.w[i] = int(v[i]);
        out.scale = fp16_bits_to_f32(uint16_t(r.p));
        out.offset = 0.f;
    }
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const float d = fp16_bits_to_f32(load_u16(L::params(row, c >> 1)));
        const int8_t* qs = reinterpret_cast<const int8_t*>(L::quants(row, c >> 1)) + (c & 1) * 16;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = float(qs[i]) * d;
    }
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint8_t* qs = L::quants(row, u);
        lo = *reinterpret_cast<const int*>(qs + 4 * t);
        hi = *reinterpret_cast<const int*>(qs + 16 + 4 * t);
        scale = fp16_bits_to_f32(load_u16(L::params(row, u)));
        offset = 0.f;
    }
};

// A format with load_unit only (the GGUF layouts, K-quants included) seen through gemv_stream's
// load_raw / to_unit: the raw form is the decoded unit itself (no 16-byte loads to gain there).
template <class F>
struct StreamUnits {
    static constexpr bool kTwoScales = F::kTwoScales;
    static constexpr int kStreamUnroll = 2;
    using Raw = Unit32;
    LOWBIT_HD static void load_raw(const uint8_t* row, int64_t u, Raw& r) { F::load_unit(row, u, r); }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) { out = r; }
};

}  // namespace lowbit::cuda
