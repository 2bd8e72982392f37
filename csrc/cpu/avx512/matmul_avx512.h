// The AVX-512 matmul kernels, shared between the files of csrc/cpu/avx512/matmul_*.cpp.
#pragma once
#include "../../core/kernels.h"

namespace lowbit::avx512 {

// VNNI (matmul_gemm_vnni.cpp): registers the kernels it has, returns false where they were not compiled
// (compiler without -mavx512vnni). Call only when the CPU reports avx512vnni.
bool register_vnni(KernelTable& t);

}  // namespace lowbit::avx512
