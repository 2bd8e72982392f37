// Registers the AVX-512 matmul kernels. They use VNNI (vpdpbusd) and BF16 (vdpbf16ps); a CPU with
// AVX-512 but without those keeps the slots empty and falls back to the AVX2 kernels.
#include "../../core/kernels.h"
#include "matmul_avx512.h"

namespace lowbit {

void register_matmul_avx512(KernelTable& t) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) avx512::register_vnni(t);
    if (__builtin_cpu_supports("avx512bf16")) avx512::register_bf16(t);
#else
    (void)t;
#endif
}

}  // namespace lowbit
