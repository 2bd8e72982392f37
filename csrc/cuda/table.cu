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
struct Tile8Table {
    FormatKernels rows[kTypeCount];
    Tile8Table() { register_tile8_formats(rows); }
};
}  // namespace

const FormatKernels* format_kernels(QType type) {
    static const Table table;  // thread-safe static init
    const FormatKernels& row = table.rows[static_cast<int>(type)];
    return row.dequantize ? &row : nullptr;
}

const FormatKernels* format_kernels_tile8(QType type) {
    static const Tile8Table table;
    const FormatKernels& row = table.rows[static_cast<int>(type)];
    return row.dequantize ? &row : nullptr;
}

}  // namespace lowbit::cuda
