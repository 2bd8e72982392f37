// VecX2<V>: two V vectors driven as one vector of 2*V::N lanes. The lane-parallel searches are
// latency-bound (each group's sums are serial chains, as in the scalar code); giving every
// instruction a second, independent twin doubles the work in flight per chain at no cost in
// exactness: each lane still runs its own group's scalar sequence.
#pragma once
#include <cstdint>

namespace lowbit::simd {
namespace {

template <class V>
struct VecX2 {
    using Base = typename V::Base;
    static constexpr int N = 2 * V::N;
    struct F { typename V::F a, b; };
    struct I { typename V::I a, b; };
    struct M { typename V::M a, b; };

    static F load(const float* p) { return {V::load(p), V::load(p + V::N)}; }
    static void store(float* p, F v) { V::store(p, v.a); V::store(p + V::N, v.b); }
    static F set1(float v) { return {V::set1(v), V::set1(v)}; }
    static F zero() { return {V::zero(), V::zero()}; }
    static F add(F x, F y) { return {V::add(x.a, y.a), V::add(x.b, y.b)}; }
    static F sub(F x, F y) { return {V::sub(x.a, y.a), V::sub(x.b, y.b)}; }
    static F mul(F x, F y) { return {V::mul(x.a, y.a), V::mul(x.b, y.b)}; }
    static F div(F x, F y) { return {V::div(x.a, y.a), V::div(x.b, y.b)}; }
    static F sqrt(F x) { return {V::sqrt(x.a), V::sqrt(x.b)}; }
    static F abs(F x) { return {V::abs(x.a), V::abs(x.b)}; }
    static F neg(F x) { return {V::neg(x.a), V::neg(x.b)}; }
    static F min(F x, F y) { return {V::min(x.a, y.a), V::min(x.b, y.b)}; }
    static F max(F x, F y) { return {V::max(x.a, y.a), V::max(x.b, y.b)}; }

    static M lt(F x, F y) { return {V::lt(x.a, y.a), V::lt(x.b, y.b)}; }
    static M le(F x, F y) { return {V::le(x.a, y.a), V::le(x.b, y.b)}; }
    static M gt(F x, F y) { return {V::gt(x.a, y.a), V::gt(x.b, y.b)}; }
    static M eq(F x, F y) { return {V::eq(x.a, y.a), V::eq(x.b, y.b)}; }
    static M neq(F x, F y) { return {V::neq(x.a, y.a), V::neq(x.b, y.b)}; }
    static M mand(M x, M y) { return {V::mand(x.a, y.a), V::mand(x.b, y.b)}; }
    static M mor(M x, M y) { return {V::mor(x.a, y.a), V::mor(x.b, y.b)}; }
    static M mandnot(M x, M y) { return {V::mandnot(x.a, y.a), V::mandnot(x.b, y.b)}; }
    static M none() { return {V::none(), V::none()}; }
    static M all_lanes() { return {V::all_lanes(), V::all_lanes()}; }
    static bool any(M m) { return V::any(V::mor(m.a, m.b)); }
    static bool all(M m) { return V::all(V::mand(m.a, m.b)); }
    static F blend(M m, F f, F t) { return {V::blend(m.a, f.a, t.a), V::blend(m.b, f.b, t.b)}; }
    static I blend(M m, I f, I t) { return {V::blend(m.a, f.a, t.a), V::blend(m.b, f.b, t.b)}; }

    static I nearest_int(F x) { return {V::nearest_int(x.a), V::nearest_int(x.b)}; }
    static I iset1(int v) { return {V::iset1(v), V::iset1(v)}; }
    static I iadd(I x, I y) { return {V::iadd(x.a, y.a), V::iadd(x.b, y.b)}; }
    static I clamp(I v, int lo, int hi) { return {V::clamp(v.a, lo, hi), V::clamp(v.b, lo, hi)}; }
    static M ineq(I x, I y) { return {V::ineq(x.a, y.a), V::ineq(x.b, y.b)}; }
    static F to_float(I v) { return {V::to_float(v.a), V::to_float(v.b)}; }
    static void store_u8(uint8_t* p, I v) { V::store_u8(p, v.a); V::store_u8(p + V::N, v.b); }
};

}  // namespace
}  // namespace lowbit::simd
