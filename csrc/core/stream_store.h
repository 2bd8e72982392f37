// Copy with non-temporal stores: for outputs much larger than the last-level cache, plain stores
// first read each destination line (read-for-ownership), so a write-bound loop like dequantize moves
// twice the bytes it writes. SSE2 streaming stores are baseline x86-64, so no ISA dispatch is needed.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#endif

namespace lowbit {

// Outputs above this many bytes are streamed past the cache (a typical L3 slice per core is smaller).
constexpr int64_t kStreamStoreMinBytes = int64_t(16) << 20;

// dst: (n,) f32, 16-byte aligned for the fast path; src: (n,) f32 (hot in L1)
static inline void copy_f32_streaming(float* dst, const float* src, int64_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if ((reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
        for (; i < n; ++i) dst[i] = src[i];
        return;
    }
#endif
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

static inline void stream_store_fence() {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_sfence();  // streaming stores are weakly ordered: make them visible before the call returns
#endif
}

}  // namespace lowbit
