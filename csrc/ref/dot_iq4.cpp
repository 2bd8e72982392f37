// Dot products of the non-linear 4-bit types with their activations, as ggml's generic
// vec_dot_iq4_nl_q8_0 / vec_dot_iq4_xs_q8_K: table levels times int8 activations, exact per block
// (iq4_xs: per 32-value sub-block), scaled and summed in f32.
#include "../core/fp16.h"
#include "dot.h"

namespace lowbit::ref {

float vec_dot_iq4_nl(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_iq4_nl*>(vw);
    const auto* y = static_cast<const block_q8_0*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK4_NL; ++ib) {
        const float d = fp16_to_f32(y[ib].d) * fp16_to_f32(x[ib].d);
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < QK4_NL / 2; ++j) {
            sumi1 += y[ib].qs[j] * kvalues_iq4nl[x[ib].qs[j] & 0xF];
            sumi2 += y[ib].qs[j + QK4_NL / 2] * kvalues_iq4nl[x[ib].qs[j] >> 4];
        }
        sumf += d * (sumi1 + sumi2);
    }
    return sumf;
}

float vec_dot_iq4_xs(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_iq4_xs*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sumf = 0;
    for (int64_t ibl = 0; ibl < k / QK_K; ++ibl) {
        const float d4d8 = fp16_to_f32(x[ibl].d) * y[ibl].d;
        const uint8_t* qs = x[ibl].qs;
        const int8_t* q8 = y[ibl].qs;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            // 6-bit scale: low 4 bits in scales_l (two per byte), high 2 bits in scales_h
            const int ls = ((x[ibl].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                           (((x[ibl].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d4d8 * (ls - 32);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * kvalues_iq4nl[qs[j] & 0xF];
                sumi2 += q8[j + 16] * kvalues_iq4nl[qs[j] >> 4];
            }
            sumf += dl * (sumi1 + sumi2);
            qs += 16;
            q8 += 32;
        }
    }
    return sumf;
}

}  // namespace lowbit::ref
