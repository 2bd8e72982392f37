// iq4_nl (32-weight blocks, q4_0's nibble layout) and iq4_xs (256-weight blocks of eight 32-weight
// sub-blocks with 6-bit scales): 4-bit indices into the non-linear table kvalues_iq4nl.
#include <cstddef>

#include "../core/blocks.h"
#include "kernels.cuh"

namespace lowbit::cuda {
namespace {

// blocks.h's kvalues_iq4nl, statically initialised so every device gets it when the module loads
__constant__ int8_t kIq4Levels[16] = {
    kvalues_iq4nl[0],  kvalues_iq4nl[1],  kvalues_iq4nl[2],  kvalues_iq4nl[3],
    kvalues_iq4nl[4],  kvalues_iq4nl[5],  kvalues_iq4nl[6],  kvalues_iq4nl[7],
    kvalues_iq4nl[8],  kvalues_iq4nl[9],  kvalues_iq4nl[10], kvalues_iq4nl[11],
    kvalues_iq4nl[12], kvalues_iq4nl[13], kvalues_iq4nl[14], kvalues_iq4nl[15]};

LOWBIT_HD float iq4_level(int i) {
#ifdef __CUDA_ARCH__
    return float(kIq4Levels[i]);
#else
    return float(kvalues_iq4nl[i]);
#endif
}

struct FormatIQ4_NL {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = row + (c >> 1) * int64_t(sizeof(block_iq4_nl));
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_iq4_nl, d)));
        const uint8_t* qs = b + offsetof(block_iq4_nl, qs);
        const int shift = (c & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = d * iq4_level((qs[i] >> shift) & 0xF);
    }
};

struct FormatIQ4_XS {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t, float out[16]) {
        const uint8_t* b = row + (c >> 4) * int64_t(sizeof(block_iq4_xs));
        const int s = int(c & 15), ib = s / 2;  // ib: the 32-weight sub-block
        const float d = fp16_bits_to_f32(load_u16(b + offsetof(block_iq4_xs, d)));
        const uint16_t scales_h = load_u16(b + offsetof(block_iq4_xs, scales_h));
        const uint8_t scales_l = b[offsetof(block_iq4_xs, scales_l) + ib / 2];
        const int ls = ((scales_l >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
        const float dl = d * float(ls - 32);
        const uint8_t* qs = b + offsetof(block_iq4_xs, qs) + 16 * ib;
        const int shift = (s & 1) * 4;
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = dl * iq4_level((qs[i] >> shift) & 0xF);
    }
};

}  // namespace

void register_iq4_formats(FormatKernels* table) {
    table[int(QType::IQ4_NL)] = make_format_kernels<FormatIQ4_NL>();
    table[int(QType::IQ4_XS)] = make_format_kernels<FormatIQ4_XS>();
}

}  // namespace lowbit::cuda
