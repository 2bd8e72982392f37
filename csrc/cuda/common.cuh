// Device-side helpers shared by every CUDA format file: IEEE half/bfloat16 decoding and unaligned
// little-endian loads (GGUF blocks of 18, 22 or 34 bytes leave fields only byte- or 2-byte-aligned).
#pragma once
#include <cuda_fp16.h>
#include <cstdint>
#include <cstring>

namespace lowbit::cuda {

// The format decoders are __host__ __device__: the host build of the same code is what
// _cuda.decode_host runs, so CPU-only CI checks every decoder against the reference bit for bit.
#define LOWBIT_HD __host__ __device__ __forceinline__

// Exact for every input, subnormals included, so dequantized values equal the CPU reference's.
LOWBIT_HD float fp16_bits_to_f32(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
LOWBIT_HD float bf16_bits_to_f32(uint16_t bits) {
    const uint32_t u = uint32_t(bits) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Separately rounded multiply / add / subtract: on the device nvcc would otherwise fuse a*b-c into one
// FMA and round once, differing from the reference. The host build has no FMA contraction
// (-ffp-contract=off on the kernel library's host code).
LOWBIT_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
LOWBIT_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
LOWBIT_HD float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

LOWBIT_HD uint16_t load_u16(const uint8_t* p) {  // p: 2-byte aligned in every block
    return *reinterpret_cast<const uint16_t*>(p);
}
LOWBIT_HD uint32_t load_u32_bytes(const uint8_t* p) {  // p: any alignment
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace lowbit::cuda
