// Device-side helpers shared by every CUDA format file: IEEE half/bfloat16 decoding and unaligned
// little-endian loads (GGUF blocks of 18, 22 or 34 bytes leave fields only byte- or 2-byte-aligned).
#pragma once
#include <cuda_fp16.h>
#include <cstdint>

namespace lowbit::cuda {

// Exact for every input, subnormals included, so dequantized values equal the CPU reference's.
__device__ __forceinline__ float fp16_bits_to_f32(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) { return __uint_as_float(uint32_t(bits) << 16); }

__device__ __forceinline__ uint16_t load_u16(const uint8_t* p) {  // p: 2-byte aligned in every block
    return *reinterpret_cast<const uint16_t*>(p);
}
__device__ __forceinline__ uint32_t load_u32_bytes(const uint8_t* p) {  // p: any alignment
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace lowbit::cuda
