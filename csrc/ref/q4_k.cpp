// q4_k: not implemented yet (placeholder so the table links).
#include <stdexcept>

#include "ref.h"

namespace lowbit::ref {

void quantize_row_q4_k(const float*, void*, int64_t, const float*) { throw std::runtime_error("q4_k quantize not implemented"); }
void dequantize_row_q4_k(const void*, float*, int64_t) { throw std::runtime_error("q4_k dequantize not implemented"); }

}  // namespace lowbit::ref
