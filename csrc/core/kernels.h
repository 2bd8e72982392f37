// Kernel tables: one per ISA, all of the same shape. A null slot means "this ISA has no special
// version": dispatch falls back to the next lower ISA (avx512 -> avx2 -> generic).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "types.h"

namespace lowbit {

// x: (k,) f32 one row; y: row_bytes(k) bytes; imatrix: (k,) importance weights or nullptr.
// Types without an importance-weighted path ignore imatrix (as ggml_quantize_chunk does).
using quantize_row_fn = void (*)(const float* x, void* y, int64_t k, const float* imatrix);
// x: row_bytes(k) bytes; y: (k,) f32
using dequantize_row_fn = void (*)(const void* x, float* y, int64_t k);

// ---- matmul (csrc/core/matmul.h): y = x · Wᵀ, activations quantized to the weight type's dot type ----

// w: one weight row (row_bytes(k) bytes); a: one activation row in the dot type. The reference
// computes it as ggml's generic vec_dot does: integer block dots, scaled by the block scales in float.
using vec_dot_fn = float (*)(int64_t k, const void* w, const void* a);

// One tile of the matmul: c[i*ldc + j] = dot(W row j, A row i) for i < m, j < n. A struct rather than
// ten positional arguments: every kernel reads the same fields, and adding one does not touch them all.
struct GemmArgs {
    int64_t m, n, k;
    const void* w;          // w: (n, w_row_bytes) weight rows in the weight type
    int64_t w_row_bytes;
    const void* a;          // a: (m, a_row_bytes) activation rows in the dot type
    int64_t a_row_bytes;
    // a_ds: (m, k / act_group(dot), 2) f32 {d, s} per group of activations: d = the group's scale,
    // s = d * (sum of its quants), q8_1's stored s as is. Saves every SIMD kernel the min/offset
    // bookkeeping; null for f32/f16/bf16. The reference kernels ignore it.
    const float* a_ds;
    float* c;               // c: (m, ldc) f32
    int64_t ldc;
    // rows of the whole weight matrix (n is the slice this call computes): q4_0 follows llama.cpp's
    // repacked order only for matrices llama.cpp repacks (rows a multiple of 8), so the choice must not
    // depend on how the rows were cut among threads
    int64_t n_all = 0;
};
// The ISA kernel picks its own strategy from m (stream the weights once for a few rows, or unpack a
// panel of weights and reuse it across many rows). The driver calls it either with all m rows or
// with slabs of at least 64 rows, so a kernel whose choice only changes below 64 rows gives results
// that do not depend on the thread count.
using gemm_fn = void (*)(const GemmArgs& args);

// Rows i0..i0+MA-1 of a GemmArgs' x for the 32-block dot types (q8_0 / q8_1): their quant blocks and
// their {d_a, s_a} pairs (null when a_ds is). One definition for every ISA's tiles.
template <class A, int MA>
struct GemmXRows {
    const A* a[MA];
    const float* ds[MA];
    GemmXRows(const GemmArgs& p, int64_t i0) {
        const int64_t nb = p.k / 32;
        _Pragma("GCC unroll 32") for (int i = 0; i < MA; ++i) {
            a[i] = reinterpret_cast<const A*>(static_cast<const uint8_t*>(p.a) + (i0 + i) * p.a_row_bytes);
            ds[i] = p.a_ds ? p.a_ds + (i0 + i) * nb * 2 : nullptr;
        }
    }
};

// matmul's activation quantization for the dot types q8_0 / q8_1 (ggml's CPU from_float, spec:
// ref/act_q8.cpp) fused with the a_ds pairs. x: (k,) f32 one row; y: row_bytes(dot, k) bytes;
// ds: (k / act_group(dot), 2) f32 as GemmArgs::a_ds. Returns false when x holds NaN or inf (y and ds
// are then meaningless but written without undefined behaviour): the finiteness check rides along
// instead of costing a pass of its own. No generic slot: matmul.cpp composes the reference.
using quantize_act_fn = bool (*)(const float* x, void* y, float* ds, int64_t k);

// Activations per {d, s} pair of GemmArgs::a_ds: 32 for q8_0 / q8_1 (one per block), 16 for q8_K (one
// per bsum), 0 for the float dot types (no a_ds).
int act_group(QType dot_type);

struct TypeKernels {
    quantize_row_fn quantize_row = nullptr;
    dequantize_row_fn dequantize_row = nullptr;
    vec_dot_fn vec_dot = nullptr;  // reference only (the spec of the dot product)
    gemm_fn gemm = nullptr;
    // gemm on the rows8 layout (rows8.h): GemmArgs::w points at the slice's first group and n is a
    // multiple of 8. Must give the bits of `gemm` on the row-major rows; an empty slot in every ISA
    // falls back to unpacking (matmul.cpp).
    gemm_fn gemm_rows8 = nullptr;
    quantize_act_fn quantize_act = nullptr;  // dot types only (q8_0, q8_1)
};

// One list for both CPU families: dispatch walks down from the chosen level and skips what this CPU
// cannot run, so avx512 -> avx2 -> generic on x86 and neon_dotprod -> neon -> generic on AArch64.
enum class Isa : int { GENERIC = 0, AVX2 = 1, AVX512 = 2, NEON = 3, NEON_DOTPROD = 4, COUNT };
constexpr int kIsaCount = static_cast<int>(Isa::COUNT);

struct KernelTable {
    TypeKernels types[kTypeCount];
};

// Each ISA's table lives in that ISA's directory and is compiled with that ISA's flags.
const KernelTable& kernel_table_generic();
#if defined(LOWBIT_HAVE_AVX2)
const KernelTable& kernel_table_avx2();
#endif
#if defined(LOWBIT_HAVE_AVX512)
const KernelTable& kernel_table_avx512();
#endif
#if defined(LOWBIT_HAVE_NEON)
const KernelTable& kernel_table_neon();
const KernelTable& kernel_table_neon_dotprod();
#endif

const char* isa_name(Isa isa);
// Parses "generic" / "avx2" / "avx512" / "neon" / "neon_dotprod"; returns false for an unknown name.
bool parse_isa(const std::string& name, Isa* out);
bool isa_compiled(Isa isa);
bool isa_supported(Isa isa);  // compiled in and the CPU (and OS) can run it
// The highest usable ISA, capped by LOWBIT_ISA when set (read once).
Isa default_isa();

// The kernel chosen for `t` when running at most at level `cap` (walks down to generic).
// `chosen` (optional) receives the ISA whose kernel was picked.
quantize_row_fn resolve_quantize(QType t, Isa cap, Isa* chosen = nullptr);
dequantize_row_fn resolve_dequantize(QType t, Isa cap, Isa* chosen = nullptr);
gemm_fn resolve_gemm(QType t, Isa cap, Isa* chosen = nullptr);
gemm_fn resolve_gemm_rows8(QType t, Isa cap, Isa* chosen = nullptr);
quantize_act_fn resolve_quantize_act(QType t, Isa cap, Isa* chosen = nullptr);

// matmul kernels of each ISA, registered into that ISA's table (defined next to the kernels).
void register_matmul_generic(KernelTable& t);
#if defined(LOWBIT_HAVE_AVX2)
void register_matmul_avx2(KernelTable& t);
#endif
#if defined(LOWBIT_HAVE_AVX512)
void register_matmul_avx512(KernelTable& t);
#endif

}  // namespace lowbit
