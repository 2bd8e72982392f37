// The K-quant super-block formats q2_K .. q6_K (256 weights, 16 chunks of 16 per block). Rounding
// follows the reference expression by expression (mul_rn / sub_rn keep nvcc from fusing a
// multiply and a subtract), so dequantized values equal the CPU's bit for bit.
#include <cstddef>
#include <type_traits>

#include "../core/blocks.h"
#include "gemv_async.cuh"
#include "gemv_stream.cuh"

namespace lowbit::cuda {
namespace {

// chunk c of a row: super-block c/16, chunk c%16 inside it (weights 16*(c%16) .. +15)
template <class Block>
LOWBIT_HD const uint8_t* kquant_block(const uint8_t* row, int64_t c) {
    return row + (c >> 4) * int64_t(sizeof(Block));
}

// q2_K / q3_K: weight e of the block sits in byte 32*(e/128) + e%32 at bit pair (e%128)/32.
LOWBIT_HD int quant_2bit(const uint8_t* qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// q4_K / q5_K: 6-bit scale and min of sub-block j (0-7) from the 12 packed bytes.
LOWBIT_HD void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

struct FormatQ2_K {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = kquant_block<block_q2_K>(row, c);
        const int s = int(c & 15);  // = the 16-weight sub-block
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q2_K, d)));
        const float dmin = fp16_bits_to_f32(load_u16(b + offsetof(block_q2_K, dmin)));
        const int sc = b[offsetof(block_q2_K, scales) + s];
        const float dl = d * float(sc & 0xF);
        const float ml = dmin * float(sc >> 4);
        const uint8_t* qs = b + offsetof(block_q2_K, qs);
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = sub_rn(mul_rn(dl, float(quant_2bit(qs, 16 * s + i))), ml);
    }
};

struct FormatQ3_K {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = kquant_block<block_q3_K>(row, c);
        const int s = int(c & 15);
        const float d_all = fp16_bits_to_f32(load_u16(b + offsetof(block_q3_K, d)));
        const uint8_t* scales = b + offsetof(block_q3_K, scales);
        const int low = s < 8 ? scales[s] & 0xF : scales[s - 8] >> 4;
        const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
        const float dl = d_all * float((low | (high << 4)) - 32);
        const uint8_t* hmask = b + offsetof(block_q3_K, hmask);
        const uint8_t* qs = b + offsetof(block_q3_K, qs);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const int e = 16 * s + i;
            const int hbit = (hmask[e % 32] >> (e / 32)) & 1;
            out[i] = dl * float(quant_2bit(qs, e) - (hbit ? 0 : 4));
        }
    }
};

// q4_K and q5_K share the layout of their low nibbles: sub-block j (32 weights) uses bytes
// 32*(j/2) .. +31 of qs, the low nibbles when j is even, the high ones when odd.
template <bool kFifthBit>
struct FormatQ45_K {
    using Block = typename std::conditional<kFifthBit, block_q5_K, block_q4_K>::type;
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = kquant_block<Block>(row, c);
        const int s = int(c & 15), j = s / 2, l0 = (s & 1) * 16;
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(Block, d)));
        const float dmin = fp16_bits_to_f32(load_u16(b + offsetof(Block, dmin)));
        int sc, mn;
        scale_min_k4(j, b + offsetof(Block, scales), &sc, &mn);
        const float dl = d * float(sc);
        const float ml = dmin * float(mn);
        const uint8_t* q = b + offsetof(Block, qs) + 32 * (j / 2) + l0;
        const int shift = 4 * (j % 2);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            int v = (q[i] >> shift) & 0xF;
            if constexpr (kFifthBit) v += ((b[offsetof(block_q5_K, qh) + l0 + i] >> j) & 1) ? 16 : 0;
            out[i] = sub_rn(mul_rn(dl, float(v)), ml);
        }
    }
    // unit u = sub-block u%8 of super-block u/8: sum (d sc q - dmin mn) xq dx = d sc dx sum(q xq) - dmin mn sx
    static constexpr int kSpanBytes = 4 * int(sizeof(Block));  // 32 units = 4 super-blocks
    static constexpr bool kTwoScales = false;
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        const uint8_t* b = row + (u >> 3) * int64_t(sizeof(Block));
        const int j = int(u & 7);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(Block, d)));
        const float dmin = fp16_bits_to_f32(load_u16(b + offsetof(Block, dmin)));
        int sc, mn;
        scale_min_k4(j, b + offsetof(Block, scales), &sc, &mn);
        // qs (and q5_K's qh) start 16-byte aligned: blocks of 144 / 176 bytes, fields at 16 / 16 and 48
        static_assert(sizeof(Block) % 16 == 0 && offsetof(Block, qs) % 16 == 0, "16-byte loads of qs");
        uint32_t qw[8], hw[8];
        load_32_bytes_a16(b + offsetof(Block, qs) + 32 * (j / 2), qw);
        if constexpr (kFifthBit) load_32_bytes_a16(b + offsetof(block_q5_K, qh), hw);
        const int shift = 4 * (j % 2);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            uint32_t v = (qw[i] >> shift) & 0x0F0F0F0Fu;
            if constexpr (kFifthBit) v |= ((hw[i] >> j) & 0x01010101u) << 4;
            out.w[i] = int(v);
        }
        out.scale = d * float(sc);
        out.offset = -(dmin * float(mn));
    }
};

struct FormatQ6_K {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = kquant_block<block_q6_K>(row, c);
        const int s = int(c & 15);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q6_K, d)));
        const int8_t scale = int8_t(b[offsetof(block_q6_K, scales) + s]);
        const float dl = d * float(scale);  // (d * sc) * q, as ggml: the scale product rounds first
        const uint8_t* ql = b + offsetof(block_q6_K, ql);
        const uint8_t* qh = b + offsetof(block_q6_K, qh);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const int e = 16 * s + i;
            const int h = e / 128, quarter = (e % 128) / 32, l = e % 32;
            const int low = (ql[64 * h + l + 32 * (quarter % 2)] >> (4 * (quarter / 2))) & 0xF;
            const int high = (qh[32 * h + l] >> (2 * quarter)) & 3;
            out[i] = mul_rn(dl, float((low | (high << 4)) - 32));
        }
    }
    // unit u: weights 32j .. 32j+31 (j = u%8) of super-block u/8, which use scales 2j and 2j+1
    static constexpr bool kTwoScales = true;
    static constexpr int kSpanBytes = 4 * int(sizeof(block_q6_K));
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        const uint8_t* b = row + (u >> 3) * int64_t(sizeof(block_q6_K));
        const int j = int(u & 7), h = j / 4, quarter = j % 4;
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q6_K, d)));
        const uint8_t* ql = b + offsetof(block_q6_K, ql) + 64 * h + 32 * (quarter % 2);
        const uint8_t* qh = b + offsetof(block_q6_K, qh) + 32 * h;
        const int low_shift = 4 * (quarter / 2), high_shift = 2 * quarter;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t low = (load_u32_a2(ql + 4 * i) >> low_shift) & 0x0F0F0F0Fu;
            const uint32_t high = ((load_u32_a2(qh + 4 * i) >> high_shift) & 0x03030303u) << 4;
            out.w[i] = int(bytes_minus_32(low | high));
        }
        const int8_t* scales = reinterpret_cast<const int8_t*>(b + offsetof(block_q6_K, scales));
        out.scale = d * float(scales[2 * j]);       // weights 0-15 of the unit
        out.scale2 = d * float(scales[2 * j + 1]);  // weights 16-31
        out.offset = 0.f;
    }
};

}  // namespace

void register_kquant_formats(FormatKernels* table) {
    table[int(QType::Q2_K)] = make_format_kernels<FormatQ2_K>();
    table[int(QType::Q3_K)] = make_format_kernels<FormatQ3_K>();
    table[int(QType::Q4_K)] = with_gemv_stream<StreamUnits<FormatQ45_K<false>>>(
        with_gemv_async<FormatQ45_K<false>>(make_format_kernels_q8<FormatQ45_K<false>>()));
    table[int(QType::Q5_K)] = with_gemv_stream<StreamUnits<FormatQ45_K<true>>>(
        with_gemv_async<FormatQ45_K<true>>(make_format_kernels_q8<FormatQ45_K<true>>()));
    table[int(QType::Q6_K)] = with_gemv_stream<StreamUnits<FormatQ6_K>>(make_format_kernels_q8<FormatQ6_K>());
}

}  // namespace lowbit::cuda
