// iq4_nl: not implemented yet (placeholder so the table links).
#include <stdexcept>

#include "ref.h"

namespace lowbit::ref {

void quantize_row_iq4_nl(const float*, void*, int64_t, const float*) { throw std::runtime_error("iq4_nl quantize not implemented"); }
void dequantize_row_iq4_nl(const void*, float*, int64_t) { throw std::runtime_error("iq4_nl dequantize not implemented"); }

}  // namespace lowbit::ref
