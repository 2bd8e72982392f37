// The CUDA kernel table, filled once by the format families.
#include "kernels.h"

namespace lowbit::cuda {

namespace {
struct Table {
    FormatKernels rows[kTypeCount];
    Table() {
        register_float_formats(rows);
        register_legacy_formats(rows);
        register_kquant_formats(rows);
        register_iq4_formats(rows);
    }
};
}  // namespace

const FormatKernels* format_kernels(QType type) {
    static const Table table;  // thread-safe static init
    const FormatKernels& row = table.rows[static_cast<int>(type)];
    return row.dequantize ? &row : nullptr;
}

}  // namespace lowbit::cuda
