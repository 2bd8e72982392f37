// Q6_K: super-blocks of 256 = 16 sub-blocks of 16, x = d*sc*(q - 32) with q in [0, 63] and an int8
// sub-block scale sc; d is fp16. Per 128-value half: ql holds the low nibbles (value l and l+64 in
// byte l, values l+32 and l+96 in byte l+32), qh the top 2 bits (value l + 32*s at bit pair s of
// byte l).
// Reference: make_qx_quants (weights x^2) per sub-block; the scale of largest magnitude maps to
// -128. Weighted path: the same search with the importance weights used as they are (ggml does
// not mix in sigma2 for q6_K). Both requantize every value against the stored scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/fp16.h"
#include "kquant_pack.h"
#include "quant_search.h"
#include "ref.h"

namespace lowbit::ref {

namespace {
constexpr int kSub = 16;
constexpr int kNumSub = QK_K / kSub;

void pack_q6(const int8_t* L, block_q6_K* y) {
    for (int h = 0; h < QK_K / 128; ++h) {
        const int8_t* Lh = L + 128 * h;
        uint8_t* ql = y->ql + 64 * h;
        uint8_t* qh = y->qh + 32 * h;
        for (int l = 0; l < 32; ++l) {
            ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                         ((Lh[l + 96] >> 4) << 6));
        }
    }
}

// qw: the super-block's importance weights, or null for the reference weights x^2.
void quantize_block_q6_k(const float* x, block_q6_K* y, const float* qw) {
    int8_t L[QK_K];
    float scales[kNumSub];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < kNumSub; ++j) {
        scales[j] = make_qx_quants(kSub, 32, x + kSub * j, L + kSub * j, 1, qw ? qw + kSub * j : nullptr);
        const float a = std::fabs(scales[j]);
        if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[j]; }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(y, 0, sizeof(*y));
        y->d = f32_to_fp16(0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = f32_to_fp16(1 / iscale);
    for (int j = 0; j < kNumSub; ++j) {
        y->scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));  // int8 wrap as ggml
    }
    // Levels against the stored scales; a sub-block whose scale is 0 keeps the levels of its search.
    const float d_all = fp16_to_f32(y->d);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = d_all * y->scales[j];
        if (!d) continue;
        for (int i = 0; i < kSub; ++i) {
            const int l = nearest_int(x[kSub * j + i] / d);
            L[kSub * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
        }
    }
    pack_q6(L, y);
}
}  // namespace

void quantize_row_q6_k(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q6_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        quantize_block_q6_k(x + i * QK_K, y + i, imatrix ? imatrix + i * QK_K : nullptr);
    }
}

void dequantize_row_q6_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q6_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, s = (e % 128) / 32, l = e % 32;  // half, quarter, position
            const uint8_t ql = x[i].ql[64 * h + l + 32 * (s % 2)];
            const int low = (ql >> (4 * (s / 2))) & 0xF;
            const int high = (x[i].qh[32 * h + l] >> (2 * s)) & 3;
            // (d * sc) * q, as ggml: the product with the scale rounds first
            y[i * QK_K + e] = d * x[i].scales[e / 16] * ((low | (high << 4)) - 32);
        }
    }
}

}  // namespace lowbit::ref
