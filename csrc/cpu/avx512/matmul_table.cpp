// Registers the AVX-512 matmul kernels. They use VNNI (vpdpbusd); a CPU with AVX-512 but without VNNI
// keeps the slots empty and falls back to the AVX2 kernels.
#include "../../core/kernels.h"
#include "matmul_avx512.h"

namespace lowbit {

void register_matmul_avx512(KernelTable& t) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) avx512::register_vnni(t);
#else
    (void)t;
#endif
}

}  // namespace lowbit
