// How each ISA forms the integer dot products of the streaming kernels (matmul_gemv_*.h): the same
// kernel templates are compiled once with maddubs + madd (AVX2) and once with VNNI (AVX-512), where
// vpdpbusd and vpdpwssd fuse the widening multiply-adds with the accumulation.
#pragma once
#include <immintrin.h>

namespace lowbit {
namespace {

struct DotAvx2 {
    static constexpr bool kVnni = false;
    // 4 consecutive u8 x s8 products summed into each int32 lane
    static __m256i dot4(__m256i u, __m256i s) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
    }
    static __m256i dot4_add(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot4(u, s)); }
    // sum + (int16 pairs times int16 scales, summed into int32 lanes)
    static __m256i madd_add(__m256i sum, __m256i p16, __m256i sc16) {
        return _mm256_add_epi32(sum, _mm256_madd_epi16(p16, sc16));
    }
};

#if defined(__AVX512VNNI__)
// vpdpbusd needs unsigned levels: signed ones are shifted by 128 (kVnni tells the kernels).
struct DotVnni {
    static constexpr bool kVnni = true;
    static __m256i dot4(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
    static __m256i dot4_add(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
    static __m256i madd_add(__m256i sum, __m256i p16, __m256i sc16) { return _mm256_dpwssd_epi32(sum, p16, sc16); }
};
#endif

}  // namespace
}  // namespace lowbit
