// Q4_1 with AVX2. Quantize (no imatrix): m = min, d = (max - min) / 15,
// q = min(15, trunc((x - m) * (1/d) + 0.5)); dequantize: q * d + m (multiply, then add: two roundings).
#include "../../ref/ref.h"
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
void quantize_block(const float* x, block_q4_1* y) {
    float d, m;
    const __m256i L = quantize_asymmetric_32(x, 15, true, &d, &m);
    y->d = float_to_half(d);
    y->m = float_to_half(m);
    pack_nibbles_32(L, y->qs);
}
}  // namespace

void quantize_row_q4_1(const float* x, void* vy, int64_t k, const float* imatrix) {
    if (imatrix) return ref::quantize_row_q4_1(x, vy, k, imatrix);
    auto* y = static_cast<block_q4_1*>(vy);
    for (int64_t i = 0; i < k / QK4_1; ++i) quantize_block(x + i * QK4_1, y + i);
}

void dequantize_row_q4_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_1*>(vx);
    for (int64_t i = 0; i < k / QK4_1; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        const __m256 m = _mm256_set1_ps(half_to_float(x[i].m));
        store_u8x32_mul_add(unpack_nibbles_32(x[i].qs), d, m, y + i * QK4_1);
    }
}

}  // namespace lowbit::avx2
