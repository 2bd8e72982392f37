// Helpers shared by the AVX-512 kernels (include only from csrc/cpu/avx512/*.cpp). They are
// `static inline` for the reason given in ../avx2/simd_avx2.h (no COMDAT shared with lower ISAs);
// that header's static helpers are reused here, compiled afresh with these flags.
#pragma once
// GCC 12's avx512fintrin.h passes _mm512_undefined_*() as the pass-through of unmasked builtins and
// then warns that it "may be used uninitialized" (GCC bug 105593): a false positive, silenced for
// these kernel files only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "../avx2/simd_avx2.h"

namespace lowbit::avx512 {

using avx2::float_to_half;
using avx2::half_to_float;

// C roundf (half away from zero) on 16 lanes; see avx2::round_half_away_ps.
static inline __m512 round_half_away_ps(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 ge = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 step = _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(1.0f));
    return _mm512_mask_add_ps(t, ge, t, step);
}

// 16 signed / unsigned bytes -> 16 floats (exact).
static inline __m512 i8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
static inline __m512 u8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

}  // namespace lowbit::avx512
