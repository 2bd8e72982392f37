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

struct TypeKernels {
    quantize_row_fn quantize_row = nullptr;
    dequantize_row_fn dequantize_row = nullptr;
};

enum class Isa : int { GENERIC = 0, AVX2 = 1, AVX512 = 2, COUNT };
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

const char* isa_name(Isa isa);
// Parses "generic" / "avx2" / "avx512"; returns false for an unknown name.
bool parse_isa(const std::string& name, Isa* out);
bool isa_compiled(Isa isa);
bool isa_supported(Isa isa);  // compiled in and the CPU (and OS) can run it
// The highest usable ISA, capped by LOWBIT_ISA when set (read once).
Isa default_isa();

// The kernel chosen for `t` when running at most at level `cap` (walks down to generic).
// `chosen` (optional) receives the ISA whose kernel was picked.
quantize_row_fn resolve_quantize(QType t, Isa cap, Isa* chosen = nullptr);
dequantize_row_fn resolve_dequantize(QType t, Isa cap, Isa* chosen = nullptr);

}  // namespace lowbit
