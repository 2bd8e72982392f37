// Dot products of the 32-blocks (q4_0, q4_1, q5_0, q5_1, q8_0) with q8_0 / q8_1 activations, as
// ggml's generic vec_dot_<t>_q8_<x>: an exact integer dot per block, scaled by d_w * d_a in f32 and
// summed in f32 block by block. The _1 types add m_w * s_a, where s_a is q8_1's stored f16 s.
#include <cstring>

#include "../core/fp16.h"
#include "dot.h"

namespace lowbit::ref {

float vec_dot_q4_0(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q4_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK4_0; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const int v0 = (x[ib].qs[j] & 0x0F) - 8;  // x[j]
            const int v1 = (x[ib].qs[j] >> 4) - 8;    // x[j + 16]
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + QK4_0 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += sumi * fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d);
    }
    return sumf;
}

float vec_dot_q4_1(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q4_1*>(vw);
    const auto* y = static_cast<const block_q8_1*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK4_1; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK4_1 / 2; ++j) {
            sumi0 += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
            sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK4_1 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d)) * sumi + fp16_to_f32(x[ib].m) * fp16_to_f32(y[ib].s);
    }
    return sumf;
}

float vec_dot_q5_0(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q5_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK5_0; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof(qh));
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int h0 = ((qh >> j) & 1) << 4;         // 5th bit of x[j]
            const int h1 = ((qh >> (j + 16)) & 1) << 4;  // 5th bit of x[j + 16]
            const int x0 = ((x[ib].qs[j] & 0x0F) | h0) - 16;
            const int x1 = ((x[ib].qs[j] >> 4) | h1) - 16;
            sumi0 += x0 * y[ib].qs[j];
            sumi1 += x1 * y[ib].qs[j + QK5_0 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d)) * sumi;
    }
    return sumf;
}

float vec_dot_q5_1(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q5_1*>(vw);
    const auto* y = static_cast<const block_q8_1*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK5_1; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof(qh));
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int x0 = (x[ib].qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
            const int x1 = (x[ib].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            sumi0 += x0 * y[ib].qs[j];
            sumi1 += x1 * y[ib].qs[j + QK5_1 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d)) * sumi + fp16_to_f32(x[ib].m) * fp16_to_f32(y[ib].s);
    }
    return sumf;
}

float vec_dot_q8_0(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q8_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(va);
    float sumf = 0;
    for (int64_t ib = 0; ib < k / QK8_0; ++ib) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d));
    }
    return sumf;
}

}  // namespace lowbit::ref
