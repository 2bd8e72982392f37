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
    // matmul slots are added after the table is built, so edits inside make_avx2_table cannot drop them.
    static const KernelTable table = [] {
        KernelTable t = make_avx2_table();
        register_matmul_avx2(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
