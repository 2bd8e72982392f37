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
    static const KernelTable table = make_avx512_table();
    return table;
}

}  // namespace lowbit
