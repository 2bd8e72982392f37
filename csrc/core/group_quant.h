// GPTQ / AWQ group formats: an integer grid with one (scale, zero) per (output row, group of input
// columns), w = (q - zero) * scale, q in [0, 2^bits). These are not GGUF block types (the group size
// and the column-to-group map vary per checkpoint), so they have their own layout and kernels next to
// the type table rather than rows in it; see python/lowbit/group.py, which repacks a checkpoint's
// tensors into this layout once at load.
//
// Layout: the input columns are reordered so each group's columns are contiguous (act-order checkpoints
// put any column in any group), and every group is padded with zero codes to a whole number of chunks of
// 32 columns, so every chunk belongs to exactly one group and the kernels never split a chunk. Activations
// get the same reordering and padding (padding columns read 0) once per call.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace lowbit {

constexpr int kGroupChunk = 32;  // columns per chunk of the padded layout

struct GroupWeights {
    int bits;                    // 2, 3, 4 or 8
    int64_t n, k;                // logical shape (n_out, k)
    int64_t kp;                  // padded columns: 32 * chunk_start[groups]
    int64_t groups;              // G
    // codes: (n, row_bytes) uint8. 4-bit: per chunk 16 bytes, byte j = column j (low nibble) | column
    // j + 16 (high nibble), ggml's q4_0 order. 2/3/8-bit: one byte per column (the simple path).
    const uint8_t* codes;
    int64_t row_bytes;           // kp / 2 for 4-bit, kp otherwise
    const float* scales;         // (n, G) f32
    const float* zeros;          // (n, G) f32 (integers; GPTQ v1's +1 already applied)
    const int32_t* chunk_start;  // (G + 1,) group g covers chunks [chunk_start[g], chunk_start[g + 1])
    const int32_t* xsrc;         // (kp,) source column of each padded column, -1 for padding
};

// The code of padded column c of row j.
inline int group_code(const GroupWeights& w, int64_t j, int64_t c) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    if (w.bits != 4) return row[c];
    const uint8_t b = row[(c / kGroupChunk) * 16 + (c % 16)];
    return (c % kGroupChunk) < 16 ? (b & 0x0F) : (b >> 4);
}

// Row j, padded order -> out (kp,) f32: (q - zero) * scale, one f32 multiply (numpy's
// scales * (q - zeros) exactly); padding columns get (0 - zero) * scale (never read back).
using group_dequant_row_fn = void (*)(const GroupWeights& w, int64_t j, float* out);
// y[i * ldy + j] = sum_g scale[j, g] * (sum_{c in g} xp[i, c] q[j, c] - zero[j, g] * xg[i, g])
// for rows j in [j0, j1), i < m. xp: (m, kp) f32 reordered and padded activations; xg: (m, G) their
// per-group sums. A few activation rows: the weights are streamed once.
using group_gemv_fn = void (*)(const GroupWeights& w, int64_t j0, int64_t j1, const float* xp, const float* xg,
                               int64_t m, float* y, int64_t ldy);

struct GroupKernels {
    group_dequant_row_fn dequant_row = nullptr;
    group_gemv_fn gemv = nullptr;
};

const GroupKernels& group_kernels_generic();
#if defined(LOWBIT_HAVE_AVX2)
const GroupKernels& group_kernels_avx2();
#endif
#if defined(LOWBIT_HAVE_AVX512)
const GroupKernels& group_kernels_avx512();
#endif

// The kernels for `cap` and below (walking down to generic). `chosen`: the ISA picked.
group_dequant_row_fn resolve_group_dequant(Isa cap, Isa* chosen = nullptr);
group_gemv_fn resolve_group_gemv(Isa cap, Isa* chosen = nullptr);

// Throws std::invalid_argument("[<op>] ...") when the layout is inconsistent (a corrupt repack).
void check_group_weights(const char* op, const GroupWeights& w);

// out: (n, k) f32 in the original column order.
void group_dequantize(const GroupWeights& w, float* out, int threads, Isa isa);

// x: (m, k) f32 -> y: (m, n) f32 = x @ dequantize(W)^T, float activations, f32 accumulation.
// Few rows stream the packed weights (gemv kernel); many rows dequantize 64 weight rows at a time into
// f32 and run the f32 gemm kernel on them.
void group_matmul(const GroupWeights& w, const float* x, int64_t m, float* y, int threads, Isa isa);

}  // namespace lowbit
