// Small AVX2 helpers of the matmul kernels (internal linkage: see matmul_panel.h).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

// Loops over register-tile accumulator arrays must unroll completely, epilogues included: if any
// loop indexes the array with a variable, GCC keeps the array in memory and stores every accumulator
// on every iteration of the hot loop.
#define LOWBIT_UNROLL _Pragma("GCC unroll 32")

namespace lowbit {
namespace {

inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Four int8 activations (4 consecutive k) in every 32-bit lane.
inline __m256i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Stores the first `cols` of 8 floats (a panel's missing columns are not outputs).
inline void store_cols(float* c, __m256 v, int cols) {
    if (cols == 8) {
        _mm256_storeu_ps(c, v);
        return;
    }
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (int j = 0; j < cols; ++j) c[j] = t[j];
}

// A per-thread scratch buffer, 64-byte aligned, grown on demand and kept for the next call (the
// matmul threads are the persistent pool's, so this is allocated once per thread).
inline uint8_t* scratch(size_t bytes, int slot = 0) {
    struct Buf {
        uint8_t* p = nullptr;
        size_t size = 0;
        ~Buf() { std::free(p); }
    };
    thread_local Buf bufs[2];
    Buf& b = bufs[slot];
    if (b.size < bytes) {
        std::free(b.p);
        b.size = (bytes + 4095) / 4096 * 4096;
        b.p = static_cast<uint8_t*>(std::aligned_alloc(64, b.size));
        if (!b.p) {
            b.size = 0;
            throw std::bad_alloc();
        }
    }
    return b.p;
}

}  // namespace
}  // namespace lowbit
