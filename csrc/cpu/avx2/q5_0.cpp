// Q5_0 with AVX2. Quantize (no imatrix): d = max / -16 (max: first element of largest magnitude),
// q = min(31, trunc(x * (1/d) + 16.5)); dequantize: (q - 16) * d. Low nibbles as in q4_0, 5th bits in qh.
#include "../../ref/ref.h"
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
void quantize_block(const float* x, block_q5_0* y) {
    float d;
    const __m256i L = quantize_symmetric_32(x, 16, 31, &d);
    y->d = float_to_half(d);
    pack_q5_32(L, y->qs, y->qh);
}
}  // namespace

void quantize_row_q5_0(const float* x, void* vy, int64_t k, const float* imatrix) {
    if (imatrix) return ref::quantize_row_q5_0(x, vy, k, imatrix);
    auto* y = static_cast<block_q5_0*>(vy);
    for (int64_t i = 0; i < k / QK5_0; ++i) quantize_block(x + i * QK5_0, y + i);
}

void dequantize_row_q5_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q5_0*>(vx);
    for (int64_t i = 0; i < k / QK5_0; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        const __m256i high = _mm256_and_si256(bits_to_bytes_32(qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles_32(x[i].qs), high), _mm256_set1_epi8(16));
        store_i8x32_mul(q, d, y + i * QK5_0);
    }
}

}  // namespace lowbit::avx2
