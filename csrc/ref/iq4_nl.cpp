// IQ4_NL: blocks of 32, x = d * kvalues_iq4nl[q], q a 4-bit index into the non-linear table
// {-127 .. 113}; nibbles laid out as q4_0 (byte j: value j low, value j+16 high).
// Rounding: the block scale is a weighted least-squares fit searched over 15 candidates
// (iq4_block_scale); weights are x^2, or imatrix*sqrt(sigma2 + x^2) with sigma2 taken over the
// block itself. Indices are then re-chosen as the nearest level to x/d with the *unrounded* d,
// while the stored scale is fp16(d) (ggml's quantize_iq4_nl, which always takes this path).
#include "../core/fp16.h"
#include "iq4_common.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
void quantize_block_iq4_nl(const float* x, block_iq4_nl* y, const float* qw) {
    float weight[QK4_NL];
    iq4_block_weights(x, qw, iq4_sigma2(x, QK4_NL), weight);
    const float d = iq4_block_scale(x, weight);
    y->d = f32_to_fp16(d);
    const float id = d ? 1 / d : 0;
    uint8_t L[QK4_NL];
    for (int j = 0; j < QK4_NL; ++j) L[j] = iq4_nearest_level(id * x[j]);
    iq4_pack_nibbles(L, y->qs, QK4_NL);
}
}  // namespace

void quantize_row_iq4_nl(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_iq4_nl*>(vy);
    for (int64_t i = 0; i < k / QK4_NL; ++i) {
        quantize_block_iq4_nl(x + i * QK4_NL, y + i, imatrix ? imatrix + i * QK4_NL : nullptr);
    }
}

void dequantize_row_iq4_nl(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_iq4_nl*>(vx);
    for (int64_t i = 0; i < k / QK4_NL; ++i) {
        const float d = fp16_to_f32(x[i].d);
        float* yb = y + i * QK4_NL;
        for (int j = 0; j < QK4_NL / 2; ++j) {
            yb[j] = d * kvalues_iq4nl[x[i].qs[j] & 0xf];
            yb[j + QK4_NL / 2] = d * kvalues_iq4nl[x[i].qs[j] >> 4];
        }
    }
}

}  // namespace lowbit::ref
