#include <cstdlib>
#include <stdexcept>

#if defined(LOWBIT_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#include "kernels.h"

namespace lowbit {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::GENERIC: return "generic";
        case Isa::AVX2: return "avx2";
        case Isa::AVX512: return "avx512";
        case Isa::NEON: return "neon";
        case Isa::NEON_DOTPROD: return "neon_dotprod";
        default: return "?";
    }
}

bool parse_isa(const std::string& name, Isa* out) {
    for (int i = 0; i < kIsaCount; ++i) {
        if (name == isa_name(static_cast<Isa>(i))) { *out = static_cast<Isa>(i); return true; }
    }
    return false;
}

bool isa_compiled(Isa isa) {
    switch (isa) {
        case Isa::GENERIC: return true;
#if defined(LOWBIT_HAVE_AVX2)
        case Isa::AVX2: return true;
#endif
#if defined(LOWBIT_HAVE_AVX512)
        case Isa::AVX512: return true;
#endif
#if defined(LOWBIT_HAVE_NEON)
        case Isa::NEON: return true;
        case Isa::NEON_DOTPROD: return true;
#endif
        default: return false;
    }
}

bool isa_supported(Isa isa) {
    if (!isa_compiled(isa)) return false;
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's cpu model also checks XGETBV, so an OS that does not save AVX state reports no AVX.
    __builtin_cpu_init();
    switch (isa) {
        case Isa::GENERIC: return true;
        case Isa::AVX2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        case Isa::AVX512:
            return isa_supported(Isa::AVX2) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq");
        default: return false;
    }
#elif defined(LOWBIT_HAVE_NEON)
    switch (isa) {
        case Isa::GENERIC:
        case Isa::NEON: return true;  // Advanced SIMD is part of every AArch64 CPU
        case Isa::NEON_DOTPROD:
#if defined(__linux__)
            return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
            return true;  // every Apple silicon CPU has SDOT
#else
            return false;
#endif
        default: return false;
    }
#else
    return isa == Isa::GENERIC;
#endif
}

Isa default_isa() {
    static const Isa chosen = [] {
        Isa best = Isa::GENERIC;
        for (int i = 0; i < kIsaCount; ++i)
            if (isa_supported(static_cast<Isa>(i))) best = static_cast<Isa>(i);
        // LOWBIT_ISA only lowers the level: asking for more than the CPU has would crash with SIGILL.
        if (const char* env = std::getenv("LOWBIT_ISA")) {
            Isa want;
            if (parse_isa(env, &want) && static_cast<int>(want) < static_cast<int>(best)) best = want;
        }
        return best;
    }();
    return chosen;
}

namespace {
const KernelTable* table_for(Isa isa) {
    switch (isa) {
        case Isa::GENERIC: return &kernel_table_generic();
#if defined(LOWBIT_HAVE_AVX2)
        case Isa::AVX2: return &kernel_table_avx2();
#endif
#if defined(LOWBIT_HAVE_AVX512)
        case Isa::AVX512: return &kernel_table_avx512();
#endif
#if defined(LOWBIT_HAVE_NEON)
        case Isa::NEON: return &kernel_table_neon();
        case Isa::NEON_DOTPROD: return &kernel_table_neon_dotprod();
#endif
        default: return nullptr;
    }
}

template <typename Fn, typename Get>
Fn resolve(QType t, Isa cap, Isa* chosen, Get get) {
    for (int i = static_cast<int>(cap); i >= 0; --i) {
        const Isa isa = static_cast<Isa>(i);
        if (!isa_supported(isa)) continue;
        const KernelTable* table = table_for(isa);
        if (!table) continue;
        Fn fn = get(table->types[static_cast<int>(t)]);
        if (fn) {
            if (chosen) *chosen = isa;
            return fn;
        }
    }
    return nullptr;
}
}  // namespace

quantize_row_fn resolve_quantize(QType t, Isa cap, Isa* chosen) {
    return resolve<quantize_row_fn>(t, cap, chosen, [](const TypeKernels& k) { return k.quantize_row; });
}

dequantize_row_fn resolve_dequantize(QType t, Isa cap, Isa* chosen) {
    return resolve<dequantize_row_fn>(t, cap, chosen, [](const TypeKernels& k) { return k.dequantize_row; });
}

gemm_fn resolve_gemm(QType t, Isa cap, Isa* chosen) {
    return resolve<gemm_fn>(t, cap, chosen, [](const TypeKernels& k) { return k.gemm; });
}

gemm_fn resolve_gemm_rows8(QType t, Isa cap, Isa* chosen) {
    return resolve<gemm_fn>(t, cap, chosen, [](const TypeKernels& k) { return k.gemm_rows8; });
}

quantize_act_fn resolve_quantize_act(QType t, Isa cap, Isa* chosen) {
    return resolve<quantize_act_fn>(t, cap, chosen, [](const TypeKernels& k) { return k.quantize_act; });
}

}  // namespace lowbit
