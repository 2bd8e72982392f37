// Iq4Levels<V>: ref::iq4_nearest_level (a bisection over kvalues_iq4nl) on every lane of a vector,
// branch-free; specialized per ISA (avx2/iq4_levels_avx2.h, avx512/iq4_levels_avx512.h).
//
// The level is the number of midpoints t between consecutive levels with !(x < t), found by a
// 4-step descent. That is the reference's index for every float: below -127 / above 113 it
// saturates the same way; an exact midpoint goes up, as the reference's `x - lo < hi - x` sends it
// (near a midpoint both differences are exact, so the rounded comparison agrees with the exact
// one); and a NaN passes every !(x < t) test and lands on 15, where the bisection also ends.
// tools/iq4_levels_exhaustive.cpp checks all 2^32 floats against the reference.
#pragma once
#include <cstdint>

#include "../core/blocks.h"
#include "kquant_vec_x2.h"

namespace lowbit::simd {
namespace {

// Iq4Levels<V>::value(x): kvalues_iq4nl[nearest level of x] as float; ::index(x): that level.
template <class V>
struct Iq4Levels;

template <class V>
struct Iq4Levels<VecX2<V>> {
    using X = VecX2<V>;
    static typename X::F value(typename X::F x) { return {Iq4Levels<V>::value(x.a), Iq4Levels<V>::value(x.b)}; }
    static typename X::I index(typename X::F x) { return {Iq4Levels<V>::index(x.a), Iq4Levels<V>::index(x.b)}; }
};

// The 15 midpoints between consecutive levels (exact in float: the levels are small integers).
struct Iq4Midpoints {
    float t[15];
    constexpr Iq4Midpoints() : t{} {
        for (int i = 0; i < 15; ++i) t[i] = 0.5f * (static_cast<float>(kvalues_iq4nl[i]) + kvalues_iq4nl[i + 1]);
    }
};
constexpr Iq4Midpoints kIq4Mid{};

}  // namespace
}  // namespace lowbit::simd
