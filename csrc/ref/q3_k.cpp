// Q3_K: super-blocks of 256 = 16 sub-blocks of 16, x = d*sc*(q - 4) with q in [0, 7] (low 2 bits
// in qs, 3rd bit in hmask) and a signed 6-bit sub-block scale sc; d is fp16.
// Reference: make_q3_quants (weights x^2, coordinate descent) per sub-block; the scale of largest
// magnitude maps to -32. Weighted path: make_qx_quants with weights qw*sqrt(sigma2 + x^2)
// (sigma2 = twice the mean square of the super-block), then make_qx_quants over the 16 scales
// weighted by each sub-block's total weight. Both requantize every value against the stored scales.
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

// Scales of largest magnitude -> -32 (so the sign of the level follows ggml's convention).
void quantize_scales(const float* scales, block_q3_K* y) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < kNumSub; ++j) {
        const float a = std::fabs(scales[j]);
        if (a > amax) { amax = a; max_scale = scales[j]; }
    }
    std::memset(y->scales, 0, sizeof(y->scales));
    if (!max_scale) {
        y->d = f32_to_fp16(0.f);
        return;
    }
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < kNumSub; ++j) {
        const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));  // ggml keeps it in int8
        set_scale_q3_k(j, std::max(-32, std::min(31, static_cast<int>(l))) + 32, y->scales);
    }
    y->d = f32_to_fp16(1 / iscale);
}

// Levels against the stored scales, then split into hmask (bit 2 of value e: hmask[e%32] bit
// e/32) and the 2-bit qs. A sub-block whose scale is 0 keeps the levels of its search.
void requantize_and_pack(const float* x, int8_t* L, block_q3_K* y) {
    const float d_all = fp16_to_f32(y->d);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = d_all * get_scale_q3_k(j, y->scales);
        if (!d) continue;
        for (int i = 0; i < kSub; ++i) {
            const int l = nearest_int(x[kSub * j + i] / d);
            L[kSub * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
        }
    }
    std::memset(y->hmask, 0, sizeof(y->hmask));
    for (int e = 0; e < QK_K; ++e) {
        if (L[e] > 3) {
            y->hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
            L[e] -= 4;
        }
    }
    pack_2bit_quants(reinterpret_cast<const uint8_t*>(L), y->qs);  // all L are in [0, 3] now
}

void quantize_block_q3_k(const float* x, block_q3_K* y) {
    int8_t L[QK_K];
    float scales[kNumSub];
    for (int j = 0; j < kNumSub; ++j) scales[j] = make_q3_quants(kSub, 4, x + kSub * j, L + kSub * j, true);
    quantize_scales(scales, y);
    requantize_and_pack(x, L, y);
}

void quantize_block_q3_k_weighted(const float* x, block_q3_K* y, const float* qw) {
    int8_t L[QK_K], Ls[kNumSub];
    float weight[kSub], scales[kNumSub], sw[kNumSub];
    const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        for (int i = 0; i < kSub; ++i) {
            const float xi = x[kSub * j + i];
            weight[i] = qw[kSub * j + i] * std::sqrt(sigma2 + xi * xi);
        }
        float sumw = 0;
        for (int i = 0; i < kSub; ++i) sumw += weight[i];
        sw[j] = sumw;
        scales[j] = make_qx_quants(kSub, 4, x + kSub * j, L + kSub * j, 1, weight);
    }
    // Ls are the 6-bit scale levels already biased by 32 (make_qx_quants stores l + nmax).
    std::memset(y->scales, 0, sizeof(y->scales));
    const float d_block = make_qx_quants(kNumSub, 32, scales, Ls, 1, sw);
    for (int j = 0; j < kNumSub; ++j) set_scale_q3_k(j, Ls[j], y->scales);
    y->d = f32_to_fp16(d_block);
    requantize_and_pack(x, L, y);
}
}  // namespace

void quantize_row_q3_k(const float* x, void* vy, int64_t k, const float* imatrix) {
    auto* y = static_cast<block_q3_K*>(vy);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        if (imatrix) {
            quantize_block_q3_k_weighted(x + i * QK_K, y + i, imatrix + i * QK_K);
        } else {
            quantize_block_q3_k(x + i * QK_K, y + i);
        }
    }
}

void dequantize_row_q3_k(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q3_K*>(vx);
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const float d_all = fp16_to_f32(x[i].d);
        for (int j = 0; j < kNumSub; ++j) {
            const float dl = d_all * get_scale_q3_k(j, x[i].scales);
            for (int e = kSub * j; e < kSub * (j + 1); ++e) {
                const int high = (x[i].hmask[e % 32] >> (e / 32)) & 1;
                y[i * QK_K + e] = dl * (get_2bit_quant(x[i].qs, e) - (high ? 0 : 4));
            }
        }
    }
}

}  // namespace lowbit::ref
