// q8_k: not implemented yet (placeholder so the table links).
#include <stdexcept>

#include "ref.h"

namespace lowbit::ref {

void quantize_row_q8_k(const float*, void*, int64_t, const float*) { throw std::runtime_error("q8_k quantize not implemented"); }
void dequantize_row_q8_k(const void*, float*, int64_t) { throw std::runtime_error("q8_k dequantize not implemented"); }

}  // namespace lowbit::ref
