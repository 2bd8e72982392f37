#pragma once
#include <cstddef>

namespace lowbit {

// GB/s of a multi-threaded sequential read of an nbytes buffer, best of `repeats` passes.
double read_bandwidth_gbps(size_t nbytes, int threads, int repeats);

}  // namespace lowbit
