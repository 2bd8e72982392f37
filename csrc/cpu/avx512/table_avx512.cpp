// The AVX-512 (F, BW, VL, DQ) kernel table. Empty slots fall back to AVX2, then generic.
#include "../../core/kernels.h"

namespace lowbit {

namespace {
KernelTable make_avx512_table() {
    KernelTable t;
    return t;
}
}  // namespace

const KernelTable& kernel_table_avx512() {
    // matmul slots are added after the table is built, so edits inside make_avx512_table cannot drop them.
    static const KernelTable table = [] {
        KernelTable t = make_avx512_table();
        register_matmul_avx512(t);
        return t;
    }();
    return table;
}

}  // namespace lowbit
