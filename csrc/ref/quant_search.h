// The scale searches shared by the reference quantizers (ggml-quants.c's make_*_quants).
// Each picks a scale (and for the *kx* variants a min) for one group of n values and writes the
// integer levels L. Their float operations are written in ggml's exact order: any reordering
// changes which candidate wins and breaks bit-exactness.
#pragma once
#include <cstdint>

namespace lowbit::ref {

constexpr float kGroupMaxEps = 1e-15f;  // a group whose max |x| is below this is all zeros

// Symmetric levels in [-nmax, nmax-1], stored as L+nmax. rmse_type selects the weighting when
// qw is null (1: x^2, 2: 1, 3: |x|, else sqrt|x|); rmse_type < 0 returns after the first fit.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Symmetric 3-bit levels for q3_K, optionally refined by coordinate descent (do_rmse).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

// Asymmetric levels in [0, nmax] with a min <= 0 (returned negated in *the_min); grid search over
// nstep+1 scales (rmin + rdelta*is + nmax)/(max-min) minimizing the weighted error.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
// As make_qkx2_quants, but weights may be null (then x^2) and max <= min counts as degenerate.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// Positive levels in [0, nmax] for the scales of q2_K/q3_K sub-blocks under importance weights.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

}  // namespace lowbit::ref
