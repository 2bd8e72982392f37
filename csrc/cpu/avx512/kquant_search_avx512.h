// VecAvx512: the 16-lane vector vocabulary the lane-parallel K-quant searches (../kquant_search_simd.h)
// are written in. Each lane runs one sub-block's scalar search, so every operation here must round
// exactly like the scalar C it replaces: plain mul/add/sub/div/sqrt (IEEE, correctly rounded), no
// FMA, comparisons with C's ordered semantics (a NaN compares false) unless noted.
// Only for translation units compiled with the AVX-512 flags; everything has internal linkage so
// the AVX-512 code can never be picked by the linker for another ISA's caller.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace lowbit::simd {
namespace {

struct VecAvx512 {
    using Base = VecAvx512;  // the vector for elementwise work along values
    static constexpr int N = 16;
    using F = __m512;
    using I = __m512i;
    using M = __mmask16;

    static F load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
    static F set1(float v) { return _mm512_set1_ps(v); }
    static F zero() { return _mm512_setzero_ps(); }
    static F add(F a, F b) { return _mm512_add_ps(a, b); }
    static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F div(F a, F b) { return _mm512_div_ps(a, b); }
    static F sqrt(F a) { return _mm512_sqrt_ps(a); }
    // fabs / unary minus: clear / flip the sign bit (also for 0 and NaN, as the scalar ops do)
    static F abs(F a) { return _mm512_abs_ps(a); }
    static F neg(F a) {
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
    }
    // VMINPS/VMAXPS return the SECOND operand unless the comparison of the first holds: min(x, m) is
    // exactly `if (x < m) m = x`, including -0.0 vs 0.0 and NaN.
    static F min(F a, F b) { return _mm512_min_ps(a, b); }
    static F max(F a, F b) { return _mm512_max_ps(a, b); }

    static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
    static M le(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
    static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
    static M neq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }  // C's `a != b`: true for NaN
    static M mand(M a, M b) { return static_cast<M>(a & b); }
    static M mor(M a, M b) { return static_cast<M>(a | b); }
    static M mandnot(M a, M b) { return static_cast<M>(a & ~b); }  // a & ~b
    static M none() { return 0; }
    static M all_lanes() { return 0xFFFF; }
    static bool any(M m) { return m != 0; }
    static bool all(M m) { return m == 0xFFFF; }
    static F blend(M m, F if_false, F if_true) { return _mm512_mask_blend_ps(m, if_false, if_true); }
    static I blend(M m, I if_false, I if_true) { return _mm512_mask_blend_epi32(m, if_false, if_true); }

    // ggml's nearest_int, lane by lane: the same magic-constant bit trick, so even out-of-range and
    // NaN inputs give the scalar's integer.
    static I nearest_int(F v) {
        const I bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.f)));
        return _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
    }
    static I iset1(int v) { return _mm512_set1_epi32(v); }
    static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
    static I clamp(I v, int lo, int hi) {
        return _mm512_max_epi32(_mm512_set1_epi32(lo), _mm512_min_epi32(_mm512_set1_epi32(hi), v));
    }
    static M ineq(I a, I b) { return _mm512_cmpneq_epi32_mask(a, b); }
    static F to_float(I v) { return _mm512_cvtepi32_ps(v); }  // exact for the small levels used
    // Stores the 16 lanes (each in [0, 255]) as 16 bytes.
    static void store_u8(uint8_t* p, I v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v)); }
};

}  // namespace
}  // namespace lowbit::simd
