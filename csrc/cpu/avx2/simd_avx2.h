// Helpers shared by the AVX2 kernels (include only from csrc/cpu/avx2/*.cpp).
// Every helper is `static inline`: a header function with external linkage compiled under -mavx2
// becomes a COMDAT that the linker may merge with a generic-flag copy of the same name, leaking
// AVX2 instructions into the generic path. For the same reason these files use F16C for fp16
// scalars instead of core/fp16.h's inline functions.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../core/blocks.h"

namespace lowbit::avx2 {

// F16C converts exactly; equal to ggml's table-free fp16 -> f32 for every input.
static inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
// Round to nearest even, as the reference f32_to_fp16 does for finite inputs (block scales are finite).
static inline uint16_t float_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline uint16_t load_u16(const void* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// Max/min are exact and order-free (no NaN reaches a quantizer), so a tree reduction is fine.
static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline float hmin_ps(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

// The element the scalar reference would have kept: the first of x[0..n) (n a multiple of 8) equal
// to `value` (by |x| when `absolute`). A reduction only knows the value; the reference stores the
// element itself, so the sign of a zero (or of +a vs -a for amax) comes from the first match.
static inline float first_equal(const float* x, int n, float value, bool absolute) {
    const __m256 v = _mm256_set1_ps(value);
    for (int i = 0; i < n; i += 8) {
        __m256 xi = _mm256_loadu_ps(x + i);
        if (absolute) xi = abs_ps(xi);
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(xi, v, _CMP_EQ_OQ));
        if (mask) return x[i + __builtin_ctz(mask)];
    }
    return value;  // unreachable when value came from x
}

// C's float -> int8_t / uint8_t conversion as the scalar reference is compiled on x86 (cvttss2si,
// then the low byte), applied to the cvtt result t: the low byte, sign-extended. For in-range values
// this is the identity; it keeps matching the reference where x * (1/d) overflows (a subnormal d
// makes 1/d inf, and cvtt's 0x80000000 has low byte 0), where a saturating pack would give -128.
static inline __m256i low_byte_i8(__m256i t) { return _mm256_srai_epi32(_mm256_slli_epi32(t, 24), 24); }

// C roundf (half away from zero). _mm256_round_ps has no such mode (its nearest is half-to-even):
// truncate, then step one away from zero where the dropped fraction is >= 0.5. v - trunc(v) is exact.
static inline __m256 round_half_away_ps(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    const __m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(ge, step));
}

// 4 x 8 int32 (each within int8 range, e.g. from low_byte_i8) -> 32 int8 in element order. The packs work per 128-bit
// lane, leaving dwords ordered a0 b0 c0 d0 a1 b1 c1 d1; one permute restores a0 a1 b0 b1 ...
static inline __m256i pack_epi32_epi8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i abcd = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The q8_0 / q8_1 block rounding: d = amax / 127, q = roundf(x * (1/d)) for 32 floats. Returns the
// 32 int8 in element order; *d_out = d (f32, before its fp16 rounding).
static inline __m256i quantize_q8_32(const float* x, float* d_out) {
    __m256 v[4];
    __m256 amax_v = _mm256_setzero_ps();  // |±0| = +0: the sign of zeros cannot reach amax
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax_v = _mm256_max_ps(amax_v, abs_ps(v[i]));
    }
    const float d = hmax_ps(amax_v) / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;  // a true division: rcp_ps is only 12 bits
    *d_out = d;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = low_byte_i8(_mm256_cvttps_epi32(round_half_away_ps(_mm256_mul_ps(v[i], idv))));
    return pack_epi32_epi8(q[0], q[1], q[2], q[3]);
}

// The q4_0 / q5_0 block rounding: d = max / -half_levels (max: the first element of largest
// magnitude), q = min(qmax, trunc(x * (1/d) + half_levels + 0.5)). Returns the 32 levels in element
// order; *d_out = d (f32, before its fp16 rounding).
static inline __m256i quantize_symmetric_32(const float* x, int half_levels, int qmax, float* d_out) {
    __m256 v[4];
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax_v = _mm256_max_ps(amax_v, abs_ps(v[i]));
    }
    const float amax = hmax_ps(amax_v);
    // The reference only replaces its initial +0 on |x| > 0: an all-(±)zero block keeps max = +0.
    const float max = amax > 0.0f ? first_equal(x, 32, amax, true) : 0.0f;
    const float d = max / static_cast<float>(-half_levels);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = d;
    const __m256 idv = _mm256_set1_ps(id), offset = _mm256_set1_ps(static_cast<float>(half_levels) + 0.5f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
        // x*id + offset >= 0.5 - ulps, so the reference's int8 cast is cvtt (+ low byte, see
        // low_byte_i8); multiply and add stay separate roundings.
        const __m256i t = low_byte_i8(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[i], idv), offset)));
        q[i] = _mm256_min_epi32(t, _mm256_set1_epi32(qmax));
    }
    return pack_epi32_epi8(q[0], q[1], q[2], q[3]);
}

// The q4_1 / q5_1 block rounding: m = min, d = (max - min) / levels, q = trunc((x - m) * (1/d) + 0.5),
// clamped to `levels` when `clamp` (q4_1; q5_1's reference has no clamp). Returns the 32 levels in
// element order; *d_out = d, *m_out = m.
static inline __m256i quantize_asymmetric_32(const float* x, int levels, bool clamp, float* d_out, float* m_out) {
    __m256 v[4];
    __m256 lo = _mm256_set1_ps(3.402823466e+38f), hi = _mm256_set1_ps(-3.402823466e+38f);
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        lo = _mm256_min_ps(lo, v[i]);
        hi = _mm256_max_ps(hi, v[i]);
    }
    // The reference keeps the first element equal to the extreme: that fixes the sign of a zero min
    // (stored in m) and of max - min for an all-zero block.
    const float min = first_equal(x, 32, hmin_ps(lo), false);
    const float max = first_equal(x, 32, hmax_ps(hi), false);
    const float d = (max - min) / static_cast<float>(levels);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = d;
    *m_out = min;
    const __m256 minv = _mm256_set1_ps(min), idv = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
        q[i] = low_byte_i8(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[i], minv), idv), half)));
        if (clamp) q[i] = _mm256_min_epi32(q[i], _mm256_set1_epi32(levels));
    }
    return pack_epi32_epi8(q[0], q[1], q[2], q[3]);  // the low bytes: the reference's uint8_t cast
}

// Sum of 32 int8: unsigned 1 x signed q in pairs (maddubs, no saturation at |sum| <= 254), then pairs
// of those as int32.
static inline int hsum_i8x32(__m256i q) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
    return hsum_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// 32 levels (bytes, element order) -> the q4_0 nibble layout: byte j = L[j] | (L[j+16] << 4),
// truncated to 8 bits as the reference's uint8_t store. The & 0xF0 drops what the 16-bit shift
// carries over from the neighbouring byte (nothing for levels <= 15).
static inline void pack_nibbles_32(__m256i L, uint8_t* qs) {
    const __m128i hi = _mm_and_si128(_mm_slli_epi16(_mm256_extracti128_si256(L, 1), 4), _mm_set1_epi8(static_cast<char>(0xF0)));
    const __m128i packed = _mm_or_si128(_mm256_castsi256_si128(L), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), packed);
}

// 32 levels (bytes, element order) -> the q5 layout: low nibbles as q4_0, bit 4 of level j as bit j
// of qh. Shifting left by 3 moves bit 4 to bit 7 for movemask; what crosses into the upper byte of a
// 16-bit lane lands in its bits 0..2, never bit 7.
static inline void pack_q5_32(__m256i L, uint8_t* qs, uint8_t* qh) {
    pack_nibbles_32(_mm256_and_si256(L, _mm256_set1_epi8(0x0F)), qs);
    const uint32_t bits = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(L, 3)));
    std::memcpy(qh, &bits, 4);
}

// The q4_0 nibble layout (byte j: x[j] low, x[j+16] high) -> 32 bytes in element order.
static inline __m256i unpack_nibbles_32(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set (bit j -> byte j): broadcast each source byte to
// 8 lanes, set every bit but the lane's own, and test for all-ones.
static inline __m256i bits_to_bytes_32(uint32_t bits) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                            0x0303030303030303);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf);
    const __m256i others = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(others, _mm256_set1_epi64x(-1));
}

// Low 8 bytes of v as signed / unsigned int8 -> 8 floats (exact).
static inline __m256 i8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
static inline __m256 u8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

// y[0..16) = q * d for 16 signed bytes (one rounding each, as the reference's int * float).
static inline void store_i8x16_mul(__m128i q, __m256 d, float* y) {
    _mm256_storeu_ps(y, _mm256_mul_ps(i8x8_ps(q), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8x8_ps(_mm_srli_si128(q, 8)), d));
}
static inline void store_i8x32_mul(__m256i q, __m256 d, float* y) {
    store_i8x16_mul(_mm256_castsi256_si128(q), d, y);
    store_i8x16_mul(_mm256_extracti128_si256(q, 1), d, y + 16);
}

// y[0..16) = d * q - m for 16 unsigned bytes: a multiply and a subtract, each rounded, never fused
// (the reference's `dl * q - ml`).
static inline void store_u8x16_mul_sub(__m128i q, __m256 d, __m256 m, float* y) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(d, u8x8_ps(q)), m));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(d, u8x8_ps(_mm_srli_si128(q, 8))), m));
}

// y[0..16) = q * d + m for 16 unsigned bytes: multiply, then add (q4_1 / q5_1).
static inline void store_u8x16_mul_add(__m128i q, __m256 d, __m256 m, float* y) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(u8x8_ps(q), d), m));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(u8x8_ps(_mm_srli_si128(q, 8)), d), m));
}
static inline void store_u8x32_mul_add(__m256i q, __m256 d, __m256 m, float* y) {
    store_u8x16_mul_add(_mm256_castsi256_si128(q), d, m, y);
    store_u8x16_mul_add(_mm256_extracti128_si256(q, 1), d, m, y + 16);
}

// ggml's get_scale_min_k4: the j-th 6-bit scale and min of a q4_K / q5_K super-block.
static inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

// q6_K, 128 weights: four runs of 32 six-bit levels minus 32 (int8, element order) from 64 ql
// bytes (low nibbles of runs 0/1, high nibbles of runs 2/3) and 32 qh bytes (bits 2g..2g+1: run g).
static inline void unpack_q6_128(const uint8_t* ql, const uint8_t* qh, __m256i out[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
    const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
    const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    const __m256i lows[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                             _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
    for (int g = 0; g < 4; ++g) {
        // (qh >> 2g) & 3, then << 4: masked first, so the 16-bit shifts cannot carry across bytes
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * g)), m2);
        out[g] = _mm256_sub_epi8(_mm256_or_si256(lows[g], _mm256_slli_epi16(hi, 4)), bias);
    }
}

}  // namespace lowbit::avx2
