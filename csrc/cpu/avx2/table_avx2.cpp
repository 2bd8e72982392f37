// The AVX2 (+FMA, F16C) kernel table. Empty slots fall back to the generic reference.
#include "../../core/kernels.h"

namespace lowbit {

namespace {
KernelTable make_avx2_table() {
    KernelTable t;
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx2() {
    static const KernelTable table = make_avx2_table();
    return table;
}

}  // namespace lowbit
