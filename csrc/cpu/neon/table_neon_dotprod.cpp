// The NEON + dotprod kernel table (ARMv8.2 SDOT, built with +dotprod, used only where the CPU reports
// asimddp): the same kernels as table_neon.cpp with SDOT for the integer dots.
#include "matmul_neon_impl.h"

namespace lowbit {

#if defined(__ARM_FEATURE_DOTPROD)
const KernelTable& kernel_table_neon_dotprod() {
    static const KernelTable table = [] {
        KernelTable t;
        register_neon_matmul<DotNeonDotprod>(t);
        return t;
    }();
    return table;
}
#else
const KernelTable& kernel_table_neon_dotprod() { return kernel_table_neon(); }
#endif

}  // namespace lowbit
