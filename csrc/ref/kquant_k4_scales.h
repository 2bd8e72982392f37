// The part Q4_K and Q5_K share: eight sub-blocks of 32 with a 6-bit scale and a 6-bit min each
// (packed as in get_scale_min_k4) under fp16 super-scales d and dmin. Only the level range (15 or
// 31) and the search grid differ between the two, so the fitting lives here once.
#pragma once
#include <cstdint>

#include "../core/blocks.h"

namespace lowbit::ref {

// The scale grid of the plain (no imatrix) search, ggml's make_qkx2_quants arguments.
struct K4Grid {
    int nmax;       // 15 (q4_K) or 31 (q5_K)
    float rmin;     // first grid offset
    float rdelta;   // grid step
    int nstep;      // grid points - 1
};

// Plain path: each sub-block searched with weights av_x + |x| (av_x = its RMS); the largest scale and
// the largest min map to 63. Writes levels L (256), the packed scales (12 bytes), d and dmin.
void fit_k4_scales_plain(const float* x, const K4Grid& grid, uint8_t* L, uint8_t* packed, fp16_t* d, fp16_t* dmin);

// Importance-weighted path: make_qkx3_quants per sub-block with weights qw*sqrt(sigma2 + x^2) (sigma2
// = twice the mean square of the super-block), then make_qp_quants fits the 6-bit scales and mins.
// clamp63: q5_K clamps those to 63 before packing; q4_K's ggml code packs them as they are.
void fit_k4_scales_weighted(const float* x, const float* qw, int nmax, bool clamp63, uint8_t* L, uint8_t* packed,
                            fp16_t* d, fp16_t* dmin);

}  // namespace lowbit::ref
