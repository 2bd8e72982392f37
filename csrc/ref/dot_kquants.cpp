// Dot products of the K-quants (q2_K .. q6_K) with q8_K activations, as ggml's generic
// vec_dot_<t>_q8_K. Integer sub-block dots times integer sub-block scales are exact; what must match
// ggml is the float part: q3_K..q6_K keep 8 f32 lane sums (lane l = values l mod 8) across the row and
// add them to sumf at the end, q2_K adds one f32 per super-block. Min terms use q8_K's bsums.
#include <cstring>

#include "../core/fp16.h"
#include "dot.h"
#include "kquant_pack.h"

namespace lowbit::ref {

namespace {

// aux32[l] += scale * q8[i] * a[i] for the n values i = l mod 8 (n a multiple of 8): ggml's lanes.
inline void lanes_madd(int32_t* aux32, const int8_t* q8, const int8_t* a, int n, int scale) {
    for (int i = 0; i < n; ++i) aux32[i % 8] += scale * (q8[i] * a[i]);
}

// sums[l] += d * aux32[l]: one super-block's share of the 8 f32 lanes.
inline void lanes_scale(float* sums, const int32_t* aux32, float d) {
    for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
}

inline float lanes_total(float sumf, const float* sums) {
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

}  // namespace

float vec_dot_q2_k(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q2_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sumf = 0;
    for (int64_t i = 0; i < k / QK_K; ++i) {
        const uint8_t* sc = x[i].scales;  // per 16 values: scale (low nibble), min (high nibble)
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * fp16_to_f32(x[i].d);
        const float dmin = y[i].d * fp16_to_f32(x[i].dmin);
        int isum = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            int isuml = 0;
            for (int l = 0; l < 16; ++l) isuml += y[i].qs[16 * j + l] * get_2bit_quant(x[i].qs, 16 * j + l);
            isum += (sc[j] & 0xF) * isuml;
        }
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

float vec_dot_q3_k(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q3_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sums[8] = {0};
    for (int64_t i = 0; i < k / QK_K; ++i) {
        int8_t a[QK_K];  // levels in [-4, 3]: 2 bits, minus 4 where the hmask bit is clear
        for (int e = 0; e < QK_K; ++e) {
            const int high = (x[i].hmask[e % 32] >> (e / 32)) & 1;
            a[e] = static_cast<int8_t>(get_2bit_quant(x[i].qs, e) - (high ? 0 : 4));
        }
        int32_t aux32[8] = {0};
        for (int j = 0; j < QK_K / 16; ++j)
            lanes_madd(aux32, y[i].qs + 16 * j, a + 16 * j, 16, get_scale_q3_k(j, x[i].scales));
        lanes_scale(sums, aux32, fp16_to_f32(x[i].d) * y[i].d);
    }
    return lanes_total(0.0f, sums);
}

namespace {
// q4_K / q5_K share everything but the 5th bit: levels in a, then 8 scales and 8 mins of 6 bits.
float dot_q45_k_block(const uint8_t* scales, fp16_t d, fp16_t dmin, const int8_t* a, const block_q8_K& y,
                      float* sums) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, scales, &sc[j], &mn[j]);
    int sumi = 0;
    for (int j = 0; j < QK_K / 16; ++j) sumi += y.bsums[j] * mn[j / 2];
    int32_t aux32[8] = {0};
    for (int j = 0; j < QK_K / 32; ++j) lanes_madd(aux32, y.qs + 32 * j, a + 32 * j, 32, sc[j]);
    lanes_scale(sums, aux32, fp16_to_f32(d) * y.d);
    const float dm = fp16_to_f32(dmin) * y.d;
    return dm * sumi;  // the caller subtracts it from sumf
}
}  // namespace

float vec_dot_q4_k(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q4_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < k / QK_K; ++i) {
        int8_t a[QK_K];  // 64 values per 32 bytes: low nibbles first, then high
        for (int e = 0; e < QK_K; ++e) {
            const uint8_t b = x[i].qs[(e / 64) * 32 + e % 32];
            a[e] = static_cast<int8_t>((e % 64) < 32 ? b & 0xF : b >> 4);
        }
        sumf -= dot_q45_k_block(x[i].scales, x[i].d, x[i].dmin, a, y[i], sums);
    }
    return lanes_total(sumf, sums);
}

float vec_dot_q5_k(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q5_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < k / QK_K; ++i) {
        int8_t a[QK_K];  // as q4_K, plus 16 where bit e/32 of qh[e%32] is set
        for (int e = 0; e < QK_K; ++e) {
            const uint8_t b = x[i].qs[(e / 64) * 32 + e % 32];
            const int high = (x[i].qh[e % 32] >> (e / 32)) & 1;
            a[e] = static_cast<int8_t>(((e % 64) < 32 ? b & 0xF : b >> 4) + 16 * high);
        }
        sumf -= dot_q45_k_block(x[i].scales, x[i].d, x[i].dmin, a, y[i], sums);
    }
    return lanes_total(sumf, sums);
}

float vec_dot_q6_k(int64_t k, const void* vw, const void* va) {
    const auto* x = static_cast<const block_q6_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(va);
    float sums[8] = {0};
    for (int64_t i = 0; i < k / QK_K; ++i) {
        int8_t a[QK_K];  // per 128: ql low nibbles (0-63), ql high nibbles (64-127), 2 bits of qh each
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = x[i].ql + 64 * h;
            const uint8_t* qh = x[i].qh + 32 * h;
            int8_t* o = a + 128 * h;
            for (int l = 0; l < 32; ++l) {
                o[l + 0] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t aux32[8] = {0};
        for (int j = 0; j < QK_K / 16; ++j) lanes_madd(aux32, y[i].qs + 16 * j, a + 16 * j, 16, x[i].scales[j]);
        lanes_scale(sums, aux32, fp16_to_f32(x[i].d) * y[i].d);
    }
    return lanes_total(0.0f, sums);
}

}  // namespace lowbit::ref
