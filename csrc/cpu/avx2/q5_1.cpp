// Q5_1 with AVX2. Quantize (no imatrix): m = min, d = (max - min) / 31,
// q = trunc((x - m) * (1/d) + 0.5) (no clamp, as ggml); dequantize: q * d + m (multiply, then add).
#include "../../ref/ref.h"
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
void quantize_block(const float* x, block_q5_1* y) {
    float d, m;
    const __m256i L = quantize_asymmetric_32(x, 31, false, &d, &m);
    y->d = float_to_half(d);
    y->m = float_to_half(m);
    pack_q5_32(L, y->qs, y->qh);
}
}  // namespace

void quantize_row_q5_1(const float* x, void* vy, int64_t k, const float* imatrix) {
    if (imatrix) return ref::quantize_row_q5_1(x, vy, k, imatrix);
    auto* y = static_cast<block_q5_1*>(vy);
    for (int64_t i = 0; i < k / QK5_1; ++i) quantize_block(x + i * QK5_1, y + i);
}

void dequantize_row_q5_1(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_1*>(vx);
    for (int64_t i = 0; i < k / QK5_1; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        const __m256 m = _mm256_set1_ps(half_to_float(x[i].m));
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        const __m256i high = _mm256_and_si256(bits_to_bytes_32(qh), _mm256_set1_epi8(0x10));
        store_u8x32_mul_add(_mm256_or_si256(unpack_nibbles_32(x[i].qs), high), d, m, y + i * QK5_1);
    }
}

}  // namespace lowbit::avx2
