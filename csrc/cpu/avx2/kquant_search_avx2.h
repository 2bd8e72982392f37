// VecAvx2: the 8-lane vector vocabulary the lane-parallel K-quant searches (../kquant_search_simd.h)
// are written in. Each lane runs one sub-block's scalar search, so every operation here must round
// exactly like the scalar C it replaces: plain mul/add/sub/div/sqrt (IEEE, correctly rounded), no
// FMA, comparisons with C's ordered semantics (a NaN compares false) unless noted.
// Only for translation units compiled with the AVX2 flags; everything has internal linkage so the
// AVX2 code can never be picked by the linker for another ISA's caller.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace lowbit::simd {
namespace {

struct VecAvx2 {
    using Base = VecAvx2;  // the vector for elementwise work along values
    static constexpr int N = 8;
    using F = __m256;
    using I = __m256i;
    using M = __m256;  // lane masks live in float vectors (all ones / all zeros), as VCMPPS makes them

    static F load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
    static F set1(float v) { return _mm256_set1_ps(v); }
    static F zero() { return _mm256_setzero_ps(); }
    static F add(F a, F b) { return _mm256_add_ps(a, b); }
    static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F div(F a, F b) { return _mm256_div_ps(a, b); }
    static F sqrt(F a) { return _mm256_sqrt_ps(a); }
    // fabs / unary minus: clear / flip the sign bit (also for 0 and NaN, as the scalar ops do)
    static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
    static F neg(F a) { return _mm256_xor_ps(_mm256_set1_ps(-0.f), a); }
    // MINPS/MAXPS return the SECOND operand unless the comparison of the first holds: min(x, m) is
    // exactly `if (x < m) m = x`, including -0.0 vs 0.0 and NaN.
    static F min(F a, F b) { return _mm256_min_ps(a, b); }
    static F max(F a, F b) { return _mm256_max_ps(a, b); }

    static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
    static M le(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
    static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
    static M neq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }  // C's `a != b`: true for NaN
    static M mand(M a, M b) { return _mm256_and_ps(a, b); }
    static M mor(M a, M b) { return _mm256_or_ps(a, b); }
    static M mandnot(M a, M b) { return _mm256_andnot_ps(b, a); }  // a & ~b
    static M none() { return _mm256_setzero_ps(); }
    static M all_lanes() { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
    static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
    static bool all(M m) { return _mm256_movemask_ps(m) == 0xFF; }
    static F blend(M m, F if_false, F if_true) { return _mm256_blendv_ps(if_false, if_true, m); }
    static I blend(M m, I if_false, I if_true) {
        return _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(if_false), _mm256_castsi256_ps(if_true), m));
    }

    // ggml's nearest_int, lane by lane: the same magic-constant bit trick, so even out-of-range and
    // NaN inputs give the scalar's integer.
    static I nearest_int(F v) {
        const I bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
        return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
    }
    static I iset1(int v) { return _mm256_set1_epi32(v); }
    static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
    static I clamp(I v, int lo, int hi) {
        return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
    }
    static M ineq(I a, I b) {
        return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_cmpeq_epi32(a, b), _mm256_set1_epi32(-1)));
    }
    static F to_float(I v) { return _mm256_cvtepi32_ps(v); }  // exact for the small levels used
    // Stores the 8 lanes (each in [0, 255]) as 8 bytes.
    static void store_u8(uint8_t* p, I v) {
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
    }
};

}  // namespace
}  // namespace lowbit::simd
