// GPTQ / AWQ 4-bit group weights on the GPU: lowbit's CPU group layout (csrc/core/group_quant.h: columns
// reordered so each group is contiguous and padded to 32-column chunks, 16 bytes of ggml-order nibbles per
// chunk) copied as it is, with (scale, zero) per (row, group) as float2 and a chunk -> group map.
// A 32-column chunk never spans two groups, so each one is a Unit32 with scale s and offset -s * zero:
// sum_c s (q_c - z) x_c = s * sum(q xq) dx - s z sx. GEMV = gemv_stream over GroupInt4Rows (x gathered
// through the column map in the kernel's prologue); m > 16 runs it on 16 rows of x at a time (each weight
// read once per 16 rows: the group formats have GEMV kernels only). Dequantize gives (n, k) f32 in the
// checkpoint's column order, (q - zero) * scale in one f32 multiply: the CPU's values exactly.
#include "gemv_stream.cuh"

namespace lowbit::cuda {

template <class T>
LOWBIT_HD T ldg_or_load(const T* p) {
#ifdef __CUDA_ARCH__
    return __ldg(p);
#else
    return *p;
#endif
}

struct GroupInt4Rows {
    static constexpr bool kTwoScales = false;
    static constexpr int kStreamUnroll = 4;
    using Args = GroupInt4Device;
    struct Raw {
        uint4 q;
        float2 p;  // scale, zero
    };
    LOWBIT_HD static void load(const Args& a, int64_t row, int64_t u, Raw& r) {
        r.q = load_16_a16<true>(a.codes + row * a.row_bytes + 16 * u);
        // uniform groups: the group from arithmetic, not a load the parameter load would wait on
        // (32-bit division: u < 2^31 chunks; a 64-bit one is a long software routine and more registers)
        const int64_t g = a.units_per_group > 0 ? int64_t(int32_t(u) / int32_t(a.units_per_group))
                                                : int64_t(ldg_or_load(a.unit_group + u));
        r.p = ldg_or_load(a.params + row * a.groups + g);
    }
    LOWBIT_HD static void to_unit(const Raw& r, Unit32& out) {
        nibbles_to_unit(r.q, out);
        out.scale = r.p.x;
        out.offset = -(r.p.x * r.p.y);
    }
    LOWBIT_HD static int64_t x_col(const Args& a, int64_t c) { return ldg_or_load(a.xsrc + c); }
    static constexpr bool kContiguousX = false;  // columns gathered through xsrc
};

cudaError_t group_int4_matmul(const GroupInt4Device& w, const float* x, int64_t ldx, float* y, int64_t m,
                              cudaStream_t stream) {
    if (m < 1 || w.kp % 32 || w.kp < 32) return cudaErrorInvalidValue;
    const int64_t rows = stream_smem_bytes(16, w.kp) <= kStreamMaxSmem  ? 16
                         : stream_smem_bytes(8, w.kp) <= kStreamMaxSmem ? 8
                                                                         : 1;
    for (int64_t i = 0; i < m; i += rows) {
        const int64_t mi = m - i < rows ? m - i : rows;
        const cudaError_t err = gemv_stream_rows<GroupInt4Rows>(w, x + i * ldx, ldx, y + i * w.n, mi, w.n, w.kp, stream);
        if (err != cudaSuccess) return err;
    }
    return cudaSuccess;
}

namespace {
__global__ void group_int4_dequantize_kernel(const GroupInt4Device w, float* __restrict__ y) {
    const int64_t total = w.n * w.kp;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = i / w.kp, c = i % w.kp;
        const int32_t dst = w.xsrc[c];
        if (dst < 0) continue;  // padding column
        const uint8_t b = w.codes[r * w.row_bytes + (c / 32) * 16 + (c % 16)];
        const int q = (c % 32) < 16 ? (b & 0x0F) : (b >> 4);
        const float2 p = w.params[r * w.groups + (w.units_per_group > 0 ? (c / 32) / w.units_per_group : w.unit_group[c / 32])];
        y[r * w.k + dst] = __fmul_rn(float(q) - p.y, p.x);  // (q - zero) * scale; q - zero is exact
    }
}
}  // namespace

cudaError_t group_int4_dequantize(const GroupInt4Device& w, float* y, cudaStream_t stream) {
    const int64_t total = w.n * w.kp;
    if (total == 0) return cudaSuccess;
    const int64_t blocks = (total + 255) / 256;
    group_int4_dequantize_kernel<<<unsigned(blocks < (1 << 20) ? blocks : (1 << 20)), 256, 0, stream>>>(w, y);
    return cudaGetLastError();
}

// The kernel's numerics on the host (x: (m, k) in the checkpoint's column order).
void group_int4_gemv_host(const GroupInt4Device& w, const float* x, float* y, int64_t m) {
    const int64_t units = w.kp / 32;
    std::vector<float> xp(size_t(w.kp));
    int8_t q[32];
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t c = 0; c < w.kp; ++c) xp[size_t(c)] = w.xsrc[c] >= 0 ? x[i * w.k + w.xsrc[c]] : 0.f;
        for (int64_t r = 0; r < w.n; ++r) y[i * w.n + r] = 0.f;
        for (int64_t u = 0; u < units; ++u) {
            float2 ds;
            quantize_x_block32(xp.data() + 32 * u, q, &ds);
            int words[8];
            memcpy(words, q, 32);
            for (int64_t r = 0; r < w.n; ++r) {
                GroupInt4Rows::Raw raw;
                GroupInt4Rows::load(w, r, u, raw);
                Unit32 wu;
                GroupInt4Rows::to_unit(raw, wu);
                y[i * w.n + r] += dot_unit<false>(wu, words, ds.x, ds.y);
            }
        }
    }
}

}  // namespace lowbit::cuda
