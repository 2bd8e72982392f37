// Block layouts of the GGUF quantization formats. The bytes of each struct are the GGUF payload
// (little-endian, packed). Layouts follow ggml-common.h; each carries a size static_assert so a
// padding surprise fails the build, not the bit-exactness tests.
#pragma once
#include <cstdint>

namespace lowbit {

using fp16_t = uint16_t;  // IEEE binary16 bits
using bf16_t = uint16_t;  // bfloat16 bits

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK4_NL = 32;
constexpr int QK_K = 256;        // K-quant super-block
constexpr int K_SCALE_SIZE = 12; // 8 six-bit scales + 8 six-bit mins packed into 12 bytes

// q4_0: d, then 32 nibbles: byte j holds x[j] (low) and x[j+16] (high); x = d*(q-8)
struct block_q4_0 { fp16_t d; uint8_t qs[QK4_0 / 2]; };
static_assert(sizeof(block_q4_0) == 18, "q4_0 block size");

// q4_1: d, m, 32 nibbles as in q4_0; x = d*q + m
struct block_q4_1 { fp16_t d; fp16_t m; uint8_t qs[QK4_1 / 2]; };
static_assert(sizeof(block_q4_1) == 20, "q4_1 block size");

// q5_0: d, qh (bit j = 5th bit of x[j]), 32 low nibbles as in q4_0; x = d*(q-16)
struct block_q5_0 { fp16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
static_assert(sizeof(block_q5_0) == 22, "q5_0 block size");

// q5_1: d, m, qh, 32 low nibbles; x = d*q + m
struct block_q5_1 { fp16_t d; fp16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
static_assert(sizeof(block_q5_1) == 24, "q5_1 block size");

// q8_0: d, 32 int8; x = d*q
struct block_q8_0 { fp16_t d; int8_t qs[QK8_0]; };
static_assert(sizeof(block_q8_0) == 34, "q8_0 block size");

// q8_1: d, s = d*sum(q), 32 int8 (activation type of q4_1/q5_1 dot products)
struct block_q8_1 { fp16_t d; fp16_t s; int8_t qs[QK8_1]; };
static_assert(sizeof(block_q8_1) == 36, "q8_1 block size");

// q2_K: 16 sub-blocks of 16; scales byte = scale (low 4) | min (high 4); qs: 2-bit, 4 per byte;
// x = d*scale*q - dmin*min
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; fp16_t d; fp16_t dmin; };
static_assert(sizeof(block_q2_K) == 84, "q2_K block size");

// q3_K: hmask (3rd bit), qs (low 2 bits), 16 six-bit signed scales packed in 12 bytes, d
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; fp16_t d; };
static_assert(sizeof(block_q3_K) == 110, "q3_K block size");

// q4_K: d, dmin, 8 sub-blocks of 32 with 6-bit scale and min, 4-bit quants; x = d*sc*q - dmin*m
struct block_q4_K { fp16_t d; fp16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
static_assert(sizeof(block_q4_K) == 144, "q4_K block size");

// q5_K: as q4_K plus qh, the 5th bit of each quant
struct block_q5_K { fp16_t d; fp16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
static_assert(sizeof(block_q5_K) == 176, "q5_K block size");

// q6_K: low 4 bits, high 2 bits, 16 int8 scales of sub-blocks of 16, d; x = d*scale*(q-32)
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; fp16_t d; };
static_assert(sizeof(block_q6_K) == 210, "q6_K block size");

// q8_K: f32 d, 256 int8, sums of each group of 16 quants (activation type of K-quant dots)
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };
static_assert(sizeof(block_q8_K) == 292, "q8_K block size");

// iq4_nl: d, 32 nibbles (layout of q4_0) indexing the non-linear table kvalues_iq4nl
struct block_iq4_nl { fp16_t d; uint8_t qs[QK4_NL / 2]; };
static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl block size");

// iq4_xs: d, 8 six-bit sub-block scales (low 4 bits in scales_l, high 2 in scales_h), 256 nibbles
struct block_iq4_xs { fp16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; };
static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs block size");

// The 16 levels of IQ4_NL / IQ4_XS (ggml-common.h kvalues_iq4nl).
constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

}  // namespace lowbit
