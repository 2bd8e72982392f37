// Shared by the NEON kernels (AArch64 Advanced SIMD, 32 registers of 128 bits). The same kernel
// templates are compiled twice: with DotNeon (ARMv8.0: every AArch64 CPU) and, in the *_dotprod.cpp
// units built with +dotprod, with DotNeonDotprod (ARMv8.2 SDOT), registered only where the CPU reports it.
//
// Every integer dot here is exact and every float step is the one the x86 kernels take in the same
// order (vfmaq_f32 is the fused multiply-add of _mm256_fmadd_ps, vfmsq_f32 that of _mm256_fnmadd_ps),
// so NEON gives the AVX2 / AVX-512 kernels' bits: llama.cpp's x86 orders for q4_0 / q4_1 / q8_0.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "../../core/blocks.h"
#include "../../core/kernels.h"

#define LOWBIT_UNROLL _Pragma("GCC unroll 32")

namespace lowbit {
namespace {

// lane j += sum of a[4j..4j+3] * b[4j..4j+3], signed bytes (SDOT's arithmetic).
struct DotNeon {
    static inline int32x4_t dot4_add(int32x4_t acc, int8x16_t a, int8x16_t b) {
        const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));  // |product| <= 128 * 128: exact
        const int16x8_t hi = vmull_high_s8(a, b);
        return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi)));
    }
};

#if defined(__ARM_FEATURE_DOTPROD)
struct DotNeonDotprod {
    static inline int32x4_t dot4_add(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};
#endif

inline int8x16_t load_s8(const void* p) { return vld1q_s8(static_cast<const int8_t*>(p)); }
// 4 bytes at p in every 32-bit lane (one dword of x against 4 rows' chunks).
inline int8x16_t dup_dword(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}
// n f16 values (n = 4) -> f32 lanes
inline float32x4_t f16x4(const void* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(p))));
}
inline float f16_1(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// The pairwise float sum the x86 kernels end with (hsum_ps): lanes l + l+4, then 0+2 / 1+3, then 0+1.
inline float hsum8(float32x4_t lo, float32x4_t hi) {
    const float32x4_t s = vaddq_f32(lo, hi);
    const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

}  // namespace
}  // namespace lowbit
