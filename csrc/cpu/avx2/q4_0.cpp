// Q4_0 with AVX2. Quantize (no imatrix): d = max / -8 where max is the first element of largest
// magnitude, q = min(15, trunc(x * (1/d) + 8.5)); dequantize: (q - 8) * d.
#include "../../ref/ref.h"
#include "avx2.h"
#include "simd_avx2.h"

namespace lowbit::avx2 {

namespace {
void quantize_block(const float* x, block_q4_0* y) {
    float d;
    const __m256i L = quantize_symmetric_32(x, 8, 15, &d);
    y->d = float_to_half(d);
    pack_nibbles_32(L, y->qs);
}
}  // namespace

void quantize_row_q4_0(const float* x, void* vy, int64_t k, const float* imatrix) {
    if (imatrix) return ref::quantize_row_q4_0(x, vy, k, imatrix);
    auto* y = static_cast<block_q4_0*>(vy);
    for (int64_t i = 0; i < k / QK4_0; ++i) quantize_block(x + i * QK4_0, y + i);
}

void dequantize_row_q4_0(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const block_q4_0*>(vx);
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < k / QK4_0; ++i) {
        const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
        const __m256i q = _mm256_sub_epi8(unpack_nibbles_32(x[i].qs), eight);
        store_i8x32_mul(q, d, y + i * QK4_0);
    }
}

}  // namespace lowbit::avx2
