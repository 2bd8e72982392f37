// Registers the AVX-512 matmul kernels: the float types on AVX-512F; the quantized types need VNNI
// (vpdpbusd) and bf16 prefers BF16 (vdpbf16ps). A CPU without those keeps the AVX2 kernels for them.
#include "../../core/kernels.h"
#include "matmul_avx512.h"

namespace lowbit {

void register_matmul_avx512(KernelTable& t) {
#if defined(__x86_64__) || defined(__i386__)
    avx512::register_float(t);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) avx512::register_vnni(t);
    if (__builtin_cpu_supports("avx512bf16")) avx512::register_bf16(t);
#else
    (void)t;
#endif
}

}  // namespace lowbit
