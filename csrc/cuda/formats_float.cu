// f32 / f16 / bf16 weights: block size 1, so k is arbitrary and decode16 zero-fills past k.
#include "kernels.cuh"

namespace lowbit::cuda {
namespace {

struct FormatF32 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t k, float out[16]) {
        const float* r = reinterpret_cast<const float*>(row);  // row: 4-byte aligned (row_bytes = 4k)
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = c * 16 + i < k ? r[c * 16 + i] : 0.f;
    }
};

struct FormatF16 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t k, float out[16]) {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(row);
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = c * 16 + i < k ? fp16_bits_to_f32(r[c * 16 + i]) : 0.f;
    }
};

struct FormatBF16 {
    __host__ __device__ static void decode16(const uint8_t* row, int64_t c, int64_t k, float out[16]) {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(row);
#pragma unroll
        for (int i = 0; i < 16; ++i) out[i] = c * 16 + i < k ? bf16_bits_to_f32(r[c * 16 + i]) : 0.f;
    }
};

}  // namespace

void register_float_formats(FormatKernels* table) {
    table[int(QType::F32)] = make_format_kernels<FormatF32>();
    table[int(QType::F16)] = make_format_kernels<FormatF16>();
    table[int(QType::BF16)] = make_format_kernels<FormatBF16>();
}

}  // namespace lowbit::cuda
