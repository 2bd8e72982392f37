// Shared by IQ4_NL and IQ4_XS (ggml-quants.c quantize_row_iq4_nl_impl). Both store 4-bit indices
// into the non-linear table kvalues_iq4nl, one scale per 32 values; IQ4_XS additionally quantizes
// the eight sub-block scales of a 256 super-block to 6 bits under one fp16 scale.
// The float operations are written in ggml's exact order: any reordering changes which candidate
// scale wins and breaks bit-exactness.
#pragma once
#include <cstdint>

namespace lowbit::ref {

constexpr int kIq4Block = 32;  // values per scale (the whole iq4_nl block, one iq4_xs sub-block)

// Index of the table level nearest to x (saturating at both ends). An exact midpoint goes to the
// upper level, and a NaN maps to 15, as ggml's best_index_int8.
int iq4_nearest_level(float x);

// sigma2 of the importance weights: twice the mean square over the n values of the *super-block*
// (32 for iq4_nl, 256 for iq4_xs), not over the row as the K-quants do.
float iq4_sigma2(const float* x, int n);

// Weights of one 32-value block: qw[j]*sqrt(sigma2 + x^2), or x^2 when qw is null.
void iq4_block_weights(const float* xb, const float* qw, float sigma2, float* weight);

// Weighted least-squares scale of one 32-value block; 0 when max|x| < kGroupMaxEps.
float iq4_block_scale(const float* xb, const float* weight);

// Two levels per byte: byte j of each 32-group holds L[j] (low nibble) and L[j+16] (high).
void iq4_pack_nibbles(const uint8_t* L, uint8_t* qs, int n);

}  // namespace lowbit::ref
