// Lane-parallel versions of the reference scale searches (csrc/ref/quant_search.cpp), written once
// over a vector vocabulary V (VecAvx2: 8 lanes, VecAvx512: 16 lanes) and bit-identical to them.
//
// Why this is exact: we never vectorize along the values of one group (that would reorder its float
// sums). Lane g holds group g, with the data transposed (xt[i*N + g] = x_g[i]); every lane then runs
// the scalar operation sequence of its own group: the same sums in the same order, the same
// nearest_int bit trick, integer clamps, correctly rounded div/sqrt and no FMA. Every data-dependent
// `if` becomes a lane mask and a blend. Lanes that the scalar code would leave early (all-zero
// groups) compute garbage that is masked out at the end.
//
// Levels are not copied on every improvement: the winning step's iscale (and min) is remembered and
// the levels are recomputed once at the end, which gives the same integers as the scalar's copy.
// Output levels are transposed too: Lt[i*N + g] is level i of group g.
#pragma once
#include <cstdint>

namespace lowbit::simd {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // as ref::kGroupMaxEps

// One make_qkx2_quants / make_qkx3_quants call's parameters (see ref/quant_search.h).
struct QkxParams {
    int nmax;
    float rmin, rdelta;
    int nstep;
    bool use_mad;
    bool degenerate_if_le;  // qkx3: max <= min is degenerate; qkx2: max == min
};

// make_qkx2_quants / make_qkx3_quants on N groups of n values with the given (transposed) weights.
// Writes scale[g], the_min[g] and Lt; nstep must be >= 1 (every K-quant caller's is).
template <class V, int n>
void make_qkx_quants_lanes(const float* xt, const float* wt, const QkxParams& p, float* scale_out,
                           float* the_min_out, uint8_t* Lt) {
    using F = typename V::F;
    using M = typename V::M;
    constexpr int N = V::N;
    F min = V::load(xt), max = min;
    F sum_w = V::load(wt);
    F sum_x = V::mul(sum_w, min);  // the scalar starts its sums at element 0, not at 0 + element 0
    for (int i = 1; i < n; ++i) {
        const F x = V::load(xt + i * N), w = V::load(wt + i * N);
        min = V::min(x, min);
        max = V::max(x, max);
        sum_w = V::add(sum_w, w);
        sum_x = V::add(sum_x, V::mul(w, x));
    }
    min = V::min(V::zero(), min);  // `if (min > 0) min = 0`: MINPS(0, min) keeps a -0.0 min as C does
    const F min0 = min;
    const M degenerate = p.degenerate_if_le ? V::le(max, min) : V::eq(max, min);
    const F nmax = V::set1(static_cast<float>(p.nmax));
    auto levels = [&](F iscale, F x, F off) {
        return V::to_float(V::clamp(V::nearest_int(V::mul(iscale, V::sub(x, off))), 0, p.nmax));
    };
    auto error_of = [&](F diff) { return p.use_mad ? V::abs(diff) : V::mul(diff, diff); };
    F l_iscale = V::zero(), l_min = min0;  // the step whose levels win
    F scale = V::zero();
    if (!V::all(degenerate)) {
        F iscale = V::div(nmax, V::sub(max, min));
        scale = V::div(V::set1(1.f), iscale);
        F best_error = V::zero();
        for (int i = 0; i < n; ++i) {
            const F x = V::load(xt + i * N);
            const F diff = V::sub(V::add(V::mul(scale, levels(iscale, x, min)), min), x);
            best_error = V::add(best_error, V::mul(V::load(wt + i * N), error_of(diff)));
        }
        l_iscale = iscale;
        F lf[n];
        for (int is = 0; is <= p.nstep; ++is) {
            // the scalar's `rmin + rdelta * is + nmax`, same conversions and order, then per lane
            iscale = V::div(V::set1(p.rmin + p.rdelta * static_cast<float>(is) + static_cast<float>(p.nmax)),
                            V::sub(max, min));
            F sum_l = V::zero(), sum_l2 = V::zero(), sum_xl = V::zero();
            for (int i = 0; i < n; ++i) {
                const F x = V::load(xt + i * N);
                lf[i] = levels(iscale, x, min);
                const F wl = V::mul(V::load(wt + i * N), lf[i]);
                sum_l = V::add(sum_l, wl);
                sum_l2 = V::add(sum_l2, V::mul(wl, lf[i]));
                sum_xl = V::add(sum_xl, V::mul(wl, x));
            }
            const F D = V::sub(V::mul(sum_w, sum_l2), V::mul(sum_l, sum_l));
            const M d_pos = V::mandnot(V::gt(D, V::zero()), degenerate);
            if (!V::any(d_pos)) continue;
            F this_scale = V::div(V::sub(V::mul(sum_w, sum_xl), V::mul(sum_x, sum_l)), D);
            F this_min = V::div(V::sub(V::mul(sum_l2, sum_x), V::mul(sum_l, sum_xl)), D);
            const M min_pos = V::gt(this_min, V::zero());
            this_min = V::blend(min_pos, this_min, V::zero());
            this_scale = V::blend(min_pos, this_scale, V::div(sum_xl, sum_l2));
            F cur_error = V::zero();
            for (int i = 0; i < n; ++i) {
                const F diff = V::sub(V::add(V::mul(this_scale, lf[i]), this_min), V::load(xt + i * N));
                cur_error = V::add(cur_error, V::mul(V::load(wt + i * N), error_of(diff)));
            }
            const M better = V::mand(d_pos, V::lt(cur_error, best_error));
            l_iscale = V::blend(better, l_iscale, iscale);
            l_min = V::blend(better, l_min, min);
            best_error = V::blend(better, best_error, cur_error);
            scale = V::blend(better, scale, this_scale);
            min = V::blend(better, min, this_min);
        }
    }
    // Degenerate groups: levels 0 (iscale 0 maps every value to 0), scale 0, the initial min.
    l_iscale = V::blend(degenerate, l_iscale, V::zero());
    V::store(scale_out, V::blend(degenerate, scale, V::zero()));
    V::store(the_min_out, V::neg(V::blend(degenerate, min, min0)));
    for (int i = 0; i < n; ++i) {
        const F x = V::load(xt + i * N);
        V::store_u8(Lt + i * N, V::clamp(V::nearest_int(V::mul(l_iscale, V::sub(x, l_min))), 0, p.nmax));
    }
}

// make_qx_quants with rmse_type 1 on N groups of n values: weights wt (transposed), or x^2 when
// wt is null. Levels are stored as l + nmax (0 for an all-zero group), as the scalar does.
template <class V, int n>
void make_qx_quants_lanes(const float* xt, const float* wt, int nmax_i, float* scale_out, uint8_t* Lt) {
    using F = typename V::F;
    using M = typename V::M;
    constexpr int N = V::N;
    F max = V::zero(), amax = V::zero();
    for (int i = 0; i < n; ++i) {
        const F x = V::load(xt + i * N), ax = V::abs(x);
        const M bigger = V::gt(ax, amax);
        amax = V::blend(bigger, amax, ax);
        max = V::blend(bigger, max, x);
    }
    const M zero_group = V::lt(amax, V::set1(kGroupMaxEps));
    F l_iscale = V::zero(), scale = V::zero();
    if (!V::all(zero_group)) {
        // w and w*x are the same in every pass: computed once (the products round the same)
        F w[n], wx[n];
        for (int i = 0; i < n; ++i) {
            const F x = V::load(xt + i * N);
            w[i] = wt ? V::load(wt + i * N) : V::mul(x, x);
            wx[i] = V::mul(w[i], x);
        }
        auto sums = [&](F iscale, F& sumlx, F& suml2) {
            sumlx = suml2 = V::zero();
            for (int i = 0; i < n; ++i) {
                const auto li = V::nearest_int(V::mul(iscale, V::load(xt + i * N)));
                const F l = V::to_float(V::clamp(li, -nmax_i, nmax_i - 1));
                sumlx = V::add(sumlx, V::mul(wx[i], l));
                suml2 = V::add(suml2, V::mul(V::mul(w[i], l), l));
            }
        };
        F sumlx, suml2;
        l_iscale = V::div(V::set1(static_cast<float>(-nmax_i)), max);
        sums(l_iscale, sumlx, suml2);
        // `suml2 ? sumlx / suml2 : 0`: C's truth test of a float is `!= 0`, true for NaN
        scale = V::blend(V::neq(suml2, V::zero()), V::zero(), V::div(sumlx, suml2));
        F best = V::mul(scale, sumlx);
        for (int is = -9; is <= 9; ++is) {
            if (is == 0) continue;
            const F iscale = V::div(V::set1(-(static_cast<float>(nmax_i) + 0.1f * static_cast<float>(is))), max);
            sums(iscale, sumlx, suml2);
            const M better =
                V::mand(V::gt(suml2, V::zero()), V::gt(V::mul(sumlx, sumlx), V::mul(best, suml2)));
            const F this_scale = V::div(sumlx, suml2);
            l_iscale = V::blend(better, l_iscale, iscale);
            scale = V::blend(better, scale, this_scale);
            best = V::blend(better, best, V::mul(this_scale, sumlx));
        }
    }
    V::store(scale_out, V::blend(zero_group, scale, V::zero()));
    const auto zero_i = V::iset1(0);
    for (int i = 0; i < n; ++i) {
        const auto l = V::clamp(V::nearest_int(V::mul(l_iscale, V::load(xt + i * N))), -nmax_i, nmax_i - 1);
        V::store_u8(Lt + i * N, V::blend(zero_group, V::iadd(l, V::iset1(nmax_i)), zero_i));
    }
}

// make_q3_quants(n, nmax, x, L, do_rmse = true) on N groups: the first fit with weights x^2, then
// ggml's coordinate descent. Each lane moves through its values in order and keeps iterating only
// while its own previous pass changed something, exactly like the scalar `if (!n_changed) break`.
template <class V, int n>
void make_q3_quants_lanes(const float* xt, int nmax, float* scale_out, uint8_t* Lt) {
    using F = typename V::F;
    using I = typename V::I;
    using M = typename V::M;
    constexpr int N = V::N;
    F max = V::zero(), amax = V::zero();
    for (int i = 0; i < n; ++i) {
        const F x = V::load(xt + i * N), ax = V::abs(x);
        const M bigger = V::gt(ax, amax);
        amax = V::blend(bigger, amax, ax);
        max = V::blend(bigger, max, x);
    }
    const M zero_group = V::lt(amax, V::set1(kGroupMaxEps));
    I L[n];
    F sumlx = V::zero(), suml2 = V::zero();
    const F iscale = V::div(V::set1(static_cast<float>(-nmax)), max);
    for (int i = 0; i < n; ++i) {
        const F x = V::load(xt + i * N);
        L[i] = V::clamp(V::nearest_int(V::mul(iscale, x)), -nmax, nmax - 1);
        const F l = V::to_float(L[i]), w = V::mul(x, x);
        sumlx = V::add(sumlx, V::mul(V::mul(w, x), l));
        suml2 = V::add(suml2, V::mul(V::mul(w, l), l));
    }
    M active = V::mandnot(V::all_lanes(), zero_group);
    for (int itry = 0; itry < 5 && V::any(active); ++itry) {
        M changed = V::none();
        for (int i = 0; i < n; ++i) {
            const F x = V::load(xt + i * N), w = V::mul(x, x), l = V::to_float(L[i]);
            const F slx0 = V::sub(sumlx, V::mul(V::mul(w, x), l));
            const F sl20 = V::sub(suml2, V::mul(V::mul(w, l), l));
            const I new_l = V::clamp(V::nearest_int(V::div(V::mul(x, sl20), slx0)), -nmax, nmax - 1);
            const F nl = V::to_float(new_l);
            const F slx = V::add(slx0, V::mul(V::mul(w, x), nl));
            const F sl2 = V::add(sl20, V::mul(V::mul(w, nl), nl));
            M take = V::mand(active, V::mand(V::gt(slx0, V::zero()), V::ineq(new_l, L[i])));
            take = V::mand(take, V::mand(V::gt(sl2, V::zero()),
                                         V::gt(V::mul(V::mul(slx, slx), suml2), V::mul(V::mul(sumlx, sumlx), sl2))));
            // A branch, not an unconditional blend: most values change in no lane, and then the
            // next value's work does not wait for this one's long div/round/compare chain (the
            // CPU speculates past the predicted branch, as it does for the scalar code).
            if (V::any(take)) {
                L[i] = V::blend(take, L[i], new_l);
                sumlx = V::blend(take, sumlx, slx);
                suml2 = V::blend(take, suml2, sl2);
                changed = V::mor(changed, take);
            }
        }
        active = V::mand(active, changed);
    }
    const F scale = V::blend(V::gt(suml2, V::zero()), V::zero(), V::div(sumlx, suml2));
    V::store(scale_out, V::blend(zero_group, scale, V::zero()));
    for (int i = 0; i < n; ++i) {
        V::store_u8(Lt + i * N, V::blend(zero_group, V::iadd(L[i], V::iset1(nmax)), V::iset1(0)));
    }
}

}  // namespace
}  // namespace lowbit::simd
