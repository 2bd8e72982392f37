// Scalar half and bfloat16 conversions, bit-identical to ggml's reference ones (ggml-impl.h).
// fp32 -> fp16 rounds to nearest even with the float-arithmetic method of the FP16 library
// (Maratyszcza): adding a power of two that aligns the mantissa makes the FPU do the rounding.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "blocks.h"

namespace lowbit {

// `static`: these helpers are compiled into the generic and the AVX translation units alike. With
// plain `inline`, an uninlined copy becomes a weak symbol and the linker may keep the AVX-compiled
// one for generic code, which would die with SIGILL on a CPU without AVX.

static inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

static inline float fp16_to_f32(fp16_t h) {
    const uint32_t w = static_cast<uint32_t>(h) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    // normal: shift exponent+mantissa into place and rescale the exponent bias (15 -> 127)
    const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    // subnormal: build 0.5 + m*2^-24 as a float, then subtract 0.5
    const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t result = sign | (two_w < (1u << 27) ? f32_bits(denormalized) : f32_bits(normalized));
    return f32_from_bits(result);
}

static inline fp16_t f32_to_fp16(float f) {
    float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;  // saturates to inf when too large
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return static_cast<fp16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float bf16_to_f32(bf16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaNs stay NaN (quiet bit forced), as ggml_compute_fp32_to_bf16.
static inline bf16_t f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 64);
    return static_cast<bf16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// ggml's nearest_int: round half to even through the 1.5*2^23 magic constant; valid for |x| < 2^22,
// which every caller guarantees by construction (quantized levels are small integers).
static inline int nearest_int(float fval) {
    const float val = fval + 12582912.f;
    int i;
    std::memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace lowbit
