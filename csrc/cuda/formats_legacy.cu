// The 32-weight block formats q4_0, q4_1, q5_0, q5_1, q8_0. A 16-weight chunk is one half of a
// block: for the 4/5-bit ones the low nibbles of qs (weights 0-15) or the high nibbles (16-31).
// Products and sums are rounded separately (mul_rn / add_rn, never a fused multiply-add) in
// the reference's order, so dequantized values equal the CPU's bit for bit.
#include <cstddef>

#include "../core/blocks.h"
#include "gemv_async.cuh"
#include "gemv_stream.cuh"
#include "gemv_mma.cuh"

namespace lowbit::cuda {
namespace {

// chunk c of a row: block c/2, half c%2
template <class Block>
LOWBIT_HD const uint8_t* legacy_block(const uint8_t* row, int64_t c) {
    return row + (c >> 1) * int64_t(sizeof(Block));
}

struct FormatQ4_0 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = legacy_block<block_q4_0>(row, c);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_0, d)));
        const uint8_t* qs = b + offsetof(block_q4_0, qs);
        const int shift = (c & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = float(((qs[i] >> shift) & 0xF) - 8) * d;
    }
    // sum (q - 8) d * xq dx = d dx sum(q xq) - 8 d sx
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 32 * int(sizeof(block_q4_0));  // 32 units = 32 blocks
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q4_0));
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_0, d)));
        const uint8_t* qs = b + offsetof(block_q4_0, qs);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t v = load_u32_a2(qs + 4 * i);
            out.w[i] = int(v & 0x0F0F0F0Fu);             // weights 4i .. 4i+3
            out.w[4 + i] = int((v >> 4) & 0x0F0F0F0Fu);  // weights 16+4i .. 16+4i+3
        }
        out.scale = d;
        out.offset = -8.f * d;
    }
    // Words t and 4+t of load_unit's Unit32 (weights 4t..4t+3 and 16+4t..16+4t+3), for gemv_mma.
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q4_0));
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_0, d)));
        const uint32_t v = load_u32_a2(b + offsetof(block_q4_0, qs) + 4 * t);
        lo = int(v & 0x0F0F0F0Fu);
        hi = int((v >> 4) & 0x0F0F0F0Fu);
        scale = d;
        offset = -8.f * d;
    }
};

struct FormatQ4_1 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = legacy_block<block_q4_1>(row, c);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, d)));
        const float m = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, m)));
        const uint8_t* qs = b + offsetof(block_q4_1, qs);
        const int shift = (c & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = add_rn(mul_rn(float((qs[i] >> shift) & 0xF), d), m);
    }
    // sum (d q + m) xq dx = d dx sum(q xq) + m sx
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 32 * int(sizeof(block_q4_1));  // 32 units = 32 blocks
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q4_1));
        const uint8_t* qs = b + offsetof(block_q4_1, qs);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t v = load_u32_a2(qs + 4 * i);
            out.w[i] = int(v & 0x0F0F0F0Fu);
            out.w[4 + i] = int((v >> 4) & 0x0F0F0F0Fu);
        }
        out.scale = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, d)));
        out.offset = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, m)));
    }
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q4_1));
        const uint32_t v = load_u32_a2(b + offsetof(block_q4_1, qs) + 4 * t);
        lo = int(v & 0x0F0F0F0Fu);
        hi = int((v >> 4) & 0x0F0F0F0Fu);
        scale = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, d)));
        offset = fp16_bits_to_f32(load_u16(b + offsetof(block_q4_1, m)));
    }
};

// The 5th bit of weight j (0-31) is bit j of qh.
LOWBIT_HD int q5_quant(const uint8_t* qs, uint32_t qh, int half, int i) {
    const int low = half ? qs[i] >> 4 : qs[i] & 0xF;
    return low | int((qh >> (16 * half + i)) & 1) << 4;
}

struct FormatQ5_0 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = legacy_block<block_q5_0>(row, c);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q5_0, d)));
        const uint32_t qh = load_u32_bytes(b + offsetof(block_q5_0, qh));
        const uint8_t* qs = b + offsetof(block_q5_0, qs);
        const int half = int(c & 1);
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = float(q5_quant(qs, qh, half, i) - 16) * d;
    }
};

struct FormatQ5_1 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = legacy_block<block_q5_1>(row, c);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q5_1, d)));
        const float m = fp16_bits_to_f32(load_u16(b + offsetof(block_q5_1, m)));
        const uint32_t qh = load_u32_bytes(b + offsetof(block_q5_1, qh));
        const uint8_t* qs = b + offsetof(block_q5_1, qs);
        const int half = int(c & 1);
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = add_rn(mul_rn(float(q5_quant(qs, qh, half, i)), d), m);
    }
};

struct FormatQ8_0 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = legacy_block<block_q8_0>(row, c);
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_q8_0, d)));
        const int8_t* qs = reinterpret_cast<const int8_t*>(b + offsetof(block_q8_0, qs)) + (c & 1) * 16;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = float(qs[i]) * d;
    }
    static constexpr bool kTwoScales = false;
    static constexpr int kSpanBytes = 32 * int(sizeof(block_q8_0));  // 32 units = 32 blocks
    LOWBIT_HD static void load_unit(const uint8_t* row, int64_t u, Unit32& out) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q8_0));
        const uint8_t* qs = b + offsetof(block_q8_0, qs);
#pragma unroll
        for (int i = 0; i < 8; ++i) out.w[i] = int(load_u32_a2(qs + 4 * i));
        out.scale = fp16_bits_to_f32(load_u16(b + offsetof(block_q8_0, d)));
        out.offset = 0.f;
    }
    LOWBIT_HD static void load_mma_words(const uint8_t* row, int64_t u, int t, int& lo, int& hi, float& scale,
                                         float& offset) {
        const uint8_t* b = row + u * int64_t(sizeof(block_q8_0));
        const uint8_t* qs = b + offsetof(block_q8_0, qs);
        lo = int(load_u32_a2(qs + 4 * t));
        hi = int(load_u32_a2(qs + 16 + 4 * t));
        scale = fp16_bits_to_f32(load_u16(b + offsetof(block_q8_0, d)));
        offset = 0.f;
    }
};

}  // namespace

void register_legacy_formats(FormatKernels* table) {
    table[int(QType::Q4_0)] = with_gemv_stream<StreamUnits<FormatQ4_0>>(
        with_gemv_async<FormatQ4_0>(with_gemv_mma<FormatQ4_0>(make_format_kernels_q8<FormatQ4_0>())));
    table[int(QType::Q4_1)] = with_gemv_stream<StreamUnits<FormatQ4_1>>(
        with_gemv_async<FormatQ4_1>(with_gemv_mma<FormatQ4_1>(make_format_kernels_q8<FormatQ4_1>())));
    table[int(QType::Q5_0)] = make_format_kernels<FormatQ5_0>();
    table[int(QType::Q5_1)] = make_format_kernels<FormatQ5_1>();
    table[int(QType::Q8_0)] = with_gemv_stream<StreamUnits<FormatQ8_0>>(
        with_gemv_async<FormatQ8_0>(with_gemv_mma<FormatQ8_0>(make_format_kernels_q8<FormatQ8_0>())));
}

}  // namespace lowbit::cuda
