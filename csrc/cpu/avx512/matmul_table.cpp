#include "../../core/kernels.h"

namespace lowbit {

void register_matmul_avx512(KernelTable&) {}

}  // namespace lowbit
