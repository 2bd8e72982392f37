// Iq4Levels<VecAvx512>: the nearest IQ4 level of 16 floats at once (see ../iq4_levels_simd.h for
// why counting midpoints gives the reference's index). The descent uses the midpoint t[i] between
// levels i and i+1: level >= 8 iff x >= t[7]; then >= +4 iff x >= t[3] or t[11]; then >= +2 iff
// x >= t[1], t[5], t[9] or t[13]; then >= +1 iff x >= t[even]; each step adds under its mask.
#pragma once
#include <immintrin.h>

#include "../iq4_levels_simd.h"
#include "kquant_search_avx512.h"

namespace lowbit::simd {
namespace {

template <>
struct Iq4Levels<VecAvx512> {
    using F = __m512;
    using I = __m512i;

    // !(x < t): x >= t, and true for a NaN (which the bisection sends up to level 15)
    static __mmask16 ge(F x, F t) { return _mm512_cmp_ps_mask(x, t, _CMP_NLT_UQ); }

    static I index(F x) {
        const auto& t = kIq4Mid.t;
        const I one = _mm512_set1_epi32(1);
        const __mmask16 m8 = ge(x, _mm512_set1_ps(t[7]));
        const __mmask16 m4 = ge(x, _mm512_mask_blend_ps(m8, _mm512_set1_ps(t[3]), _mm512_set1_ps(t[11])));
        I quarter = _mm512_maskz_mov_epi32(m8, _mm512_set1_epi32(2));
        quarter = _mm512_mask_add_epi32(quarter, m4, quarter, one);
        const F t_quarter = _mm512_setr_ps(t[1], t[5], t[9], t[13], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        const __mmask16 m2 = ge(x, _mm512_permutexvar_ps(quarter, t_quarter));
        I half = _mm512_add_epi32(quarter, quarter);
        half = _mm512_mask_add_epi32(half, m2, half, one);
        const F t_half = _mm512_setr_ps(t[0], t[2], t[4], t[6], t[8], t[10], t[12], t[14], 0, 0, 0, 0, 0, 0, 0, 0);
        const __mmask16 m1 = ge(x, _mm512_permutexvar_ps(half, t_half));
        const I level = _mm512_add_epi32(half, half);
        return _mm512_mask_add_epi32(level, m1, level, one);
    }
    static F value(F x) {
        const int8_t* kv = kvalues_iq4nl;
        const F levels = _mm512_setr_ps(kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7], kv[8], kv[9],
                                        kv[10], kv[11], kv[12], kv[13], kv[14], kv[15]);
        return _mm512_permutexvar_ps(index(x), levels);
    }
};

}  // namespace
}  // namespace lowbit::simd
