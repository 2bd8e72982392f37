// Iq4Levels<VecAvx2>: the nearest IQ4 level of 8 floats at once (see ../iq4_levels_simd.h for why
// counting midpoints gives the reference's index). The descent uses the midpoint t[i] between
// levels i and i+1: level >= 8 iff x >= t[7]; then >= +4 iff x >= t[3] or t[11]; then >= +2 iff
// x >= t[1], t[5], t[9] or t[13] (an 8-entry permute); then >= +1 iff x >= t[even] (a permute).
#pragma once
#include <immintrin.h>

#include "../iq4_levels_simd.h"
#include "kquant_search_avx2.h"

namespace lowbit::simd {
namespace {

template <>
struct Iq4Levels<VecAvx2> {
    using F = __m256;
    using I = __m256i;

    // !(x < t): x >= t, and true for a NaN (which the bisection sends up to level 15)
    static F ge(F x, F t) { return _mm256_cmp_ps(x, t, _CMP_NLT_UQ); }
    static I bits(F m) { return _mm256_castps_si256(m); }  // a true lane is -1

    // The level as 2 * half + (odd ? 1 : 0); the masks are subtracted as integers (-1 = true).
    static void locate(F x, I& half, F& odd) {
        const auto& t = kIq4Mid.t;
        const F m8 = ge(x, _mm256_set1_ps(t[7]));
        const F m4 = ge(x, _mm256_blendv_ps(_mm256_set1_ps(t[3]), _mm256_set1_ps(t[11]), m8));
        const I quarter = _mm256_sub_epi32(_mm256_and_si256(bits(m8), _mm256_set1_epi32(2)), bits(m4));
        const F m2 = ge(x, _mm256_permutevar8x32_ps(_mm256_setr_ps(t[1], t[5], t[9], t[13], 0, 0, 0, 0), quarter));
        half = _mm256_sub_epi32(_mm256_add_epi32(quarter, quarter), bits(m2));
        odd = ge(x, _mm256_permutevar8x32_ps(
                        _mm256_setr_ps(t[0], t[2], t[4], t[6], t[8], t[10], t[12], t[14]), half));
    }
    static F value(F x) {
        I half;
        F odd;
        locate(x, half, odd);
        const int8_t* kv = kvalues_iq4nl;
        const F even_v = _mm256_setr_ps(kv[0], kv[2], kv[4], kv[6], kv[8], kv[10], kv[12], kv[14]);
        const F odd_v = _mm256_setr_ps(kv[1], kv[3], kv[5], kv[7], kv[9], kv[11], kv[13], kv[15]);
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(even_v, half), _mm256_permutevar8x32_ps(odd_v, half), odd);
    }
    static I index(F x) {
        I half;
        F odd;
        locate(x, half, odd);
        return _mm256_sub_epi32(_mm256_add_epi32(half, half), bits(odd));
    }
};

}  // namespace
}  // namespace lowbit::simd
