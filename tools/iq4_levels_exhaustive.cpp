// Checks the SIMD nearest-level searches (csrc/cpu/*/iq4_levels_*.h) against the reference's
// ref::iq4_nearest_level on all 2^32 float bit patterns (NaNs, infinities, subnormals, exact
// midpoints included): the index and the level value of every lane. The argument for why they
// agree is in csrc/cpu/iq4_levels_simd.h; this is the proof by enumeration. Takes ~1 min.
//
//   g++ -O2 -std=c++17 -ffp-contract=off -c csrc/ref/iq4_common.cpp -o /tmp/iq4_common.o
//   g++ -O2 -std=c++17 -ffp-contract=off -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl
//       -mavx512dq -pthread tools/iq4_levels_exhaustive.cpp /tmp/iq4_common.o -o /tmp/iq4_levels
//   /tmp/iq4_levels        (exit status 0: every float agrees)
// GCC 12 false positive inside its own AVX-512 intrinsics (see avx512/quantize_iq4_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../csrc/cpu/avx2/iq4_levels_avx2.h"
#include "../csrc/cpu/avx512/iq4_levels_avx512.h"
#include "../csrc/ref/iq4_common.h"

using namespace lowbit;

namespace {

std::atomic<uint64_t> g_bad{0};

// Bit patterns [lo, hi) in steps of 16 (the range sizes are multiples of 16).
void check_range(uint64_t lo, uint64_t hi, bool avx512) {
    alignas(64) uint32_t bits[16];
    alignas(64) float x[16], v2[16], v5[16];
    alignas(64) int32_t i2[16], i5[16];
    uint64_t bad = 0;
    for (uint64_t u = lo; u < hi; u += 16) {
        for (int l = 0; l < 16; ++l) bits[l] = static_cast<uint32_t>(u + l);
        std::memcpy(x, bits, sizeof(x));
        for (int h = 0; h < 2; ++h) {
            const __m256 v = _mm256_load_ps(x + 8 * h);
            _mm256_store_ps(v2 + 8 * h, simd::Iq4Levels<simd::VecAvx2>::value(v));
            _mm256_store_si256(reinterpret_cast<__m256i*>(i2 + 8 * h), simd::Iq4Levels<simd::VecAvx2>::index(v));
        }
        if (avx512) {
            const __m512 v = _mm512_load_ps(x);
            _mm512_store_ps(v5, simd::Iq4Levels<simd::VecAvx512>::value(v));
            _mm512_store_si512(i5, simd::Iq4Levels<simd::VecAvx512>::index(v));
        }
        for (int l = 0; l < 16; ++l) {
            const int want = ref::iq4_nearest_level(x[l]);
            const float want_v = kvalues_iq4nl[want];
            bool ok = i2[l] == want && v2[l] == want_v;
            if (avx512) ok = ok && i5[l] == want && v5[l] == want_v;
            if (!ok && bad++ < 10) {
                std::printf("0x%08x (%g): ref %d, avx2 %d/%g, avx512 %d/%g\n", bits[l], x[l], want, i2[l], v2[l],
                            avx512 ? i5[l] : -1, avx512 ? v5[l] : 0.f);
            }
        }
    }
    g_bad += bad;
}

}  // namespace

int main() {
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    const unsigned nt = std::max(1u, std::thread::hardware_concurrency());
    const uint64_t total = uint64_t{1} << 32, step = total / 1024;
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nt; ++t) {
        threads.emplace_back([&] {
            for (uint64_t lo; (lo = next.fetch_add(step)) < total;) check_range(lo, lo + step, avx512);
        });
    }
    for (auto& t : threads) t.join();
    std::printf("%s: %llu of 2^32 floats differ (avx2%s)\n", g_bad ? "FAIL" : "ok",
                static_cast<unsigned long long>(g_bad.load()), avx512 ? ", avx512" : "");
    return g_bad ? 1 : 0;
}
