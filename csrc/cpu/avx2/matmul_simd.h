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

// ---- unpacking of the block formats (shared by the streaming kernels and the panel decoders) ----

inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
inline __m256 bcast_f16(uint16_t h) { return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<int16_t>(h))); }

// 16 bytes of nibbles -> 32 levels: byte j holds value j (low nibble) and value j + 16 (high). The 16
// bytes go to both halves (a load, no shuffle); one variable shift moves the high half's nibbles down.
inline __m256i nibbles32(const uint8_t* qs) {
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0x10 where bit j is set: the 5th bit of q5_0 / q5_1 levels.
inline __m256i bit4_from_bits32(const uint8_t* qh) {
    int32_t bits;
    std::memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits), _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask), _mm256_set1_epi8(0x10));
}

// The 16 levels of iq4_nl / iq4_xs, in both halves for pshufb.
inline __m256i iq4_table() {
    static const int8_t kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kv)));
}

// q4_K / q5_K: 8 scales and 8 mins of 6 bits from 12 bytes -> bytes 0-7 scales, 8-15 mins. Built in
// a register: writing 32-bit pieces to memory and reloading them as one vector would stall on store
// forwarding.
inline __m128i k4_scales(const uint8_t* s) {
    uint32_t a[3];
    std::memcpy(a, s, 12);
    const uint32_t sc03 = a[0] & 0x3f3f3f3f;
    const uint32_t sc47 = (a[2] & 0x0f0f0f0f) | (((a[0] >> 6) & 0x03030303) << 4);
    const uint32_t mn03 = a[1] & 0x3f3f3f3f;
    const uint32_t mn47 = ((a[2] >> 4) & 0x0f0f0f0f) | (((a[1] >> 6) & 0x03030303) << 4);
    return _mm_set_epi32(static_cast<int>(mn47), static_cast<int>(mn03), static_cast<int>(sc47),
                         static_cast<int>(sc03));
}

// q3_K: sixteen 6-bit scales (biased by 32) from 12 bytes: low nibbles in bytes 0-7 (scales 0-7 low
// nibble, 8-15 high), top 2 bits in bytes 8-11 (scale j in byte 8 + j%4, bit pair j/4). Word-wise, 4
// scales per 32-bit operation, assembled in a register (see k4_scales); returns the 16 biased scales.
inline __m128i q3_k_scales(const uint8_t* s) {
    uint32_t a[3];
    std::memcpy(a, s, 12);
    constexpr uint32_t k2 = 0x03030303, k4 = 0x0f0f0f0f;
    const uint32_t o0 = (a[0] & k4) | ((a[2] & k2) << 4);
    const uint32_t o1 = (a[1] & k4) | (((a[2] >> 2) & k2) << 4);
    const uint32_t o2 = ((a[0] >> 4) & k4) | (((a[2] >> 4) & k2) << 4);
    const uint32_t o3 = ((a[1] >> 4) & k4) | (((a[2] >> 6) & k2) << 4);
    return _mm_set_epi32(static_cast<int>(o3), static_cast<int>(o2), static_cast<int>(o1), static_cast<int>(o0));
}

// The 2-bit field p (0-3) of 32 bytes: q2_K / q3_K hold values 32 apart in one byte.
inline __m256i bits2(__m256i v, int p) { return _mm256_and_si256(_mm256_srli_epi16(v, 2 * p), _mm256_set1_epi8(3)); }

// q6_K: the 4 vectors of 32 levels (0..63) of one 128-value half from 64 bytes of ql and 32 of qh.
inline void q6_k_levels(const uint8_t* ql, const uint8_t* qh, __m256i* q) {
    const __m256i low = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
    const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(hb, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
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
