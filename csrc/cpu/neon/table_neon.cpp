// The NEON kernel table (ARMv8.0 Advanced SIMD, on every AArch64 CPU): the q4_0 / q4_1 / q8_0 matmuls
// on GGUF's rows and the rows8 kernels. Empty slots fall back to the generic reference.
#include "matmul_neon_impl.h"

namespace lowbit {

const KernelTable& kernel_table_neon() {
    static const KernelTable table = [] {
        KernelTable t;
        register_neon_matmul<DotNeon>(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
