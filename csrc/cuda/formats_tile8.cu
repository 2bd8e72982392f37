// q4_0, q4_1 and q8_0 in the tile8 device layout (tiled.cuh): every kernel of the GGUF layout over the
// tile8 addressing, plus gemv_stream with 16-byte quant loads; and the host-side pack / unpack.
#include "gemv_async.cuh"
#include "gemv_mma.cuh"
#include "gemv_stream.cuh"

namespace lowbit::cuda {

void register_tile8_formats(FormatKernels* table) {
    table[int(QType::Q4_0)] = with_gemv_stream<FormatQ4_0T>(
        with_gemv_async<FormatQ4_0T>(with_gemv_mma<FormatQ4_0T>(make_format_kernels_q8<FormatQ4_0T>())), 1);
    table[int(QType::Q4_1)] = with_gemv_stream<FormatQ4_1T>(
        with_gemv_async<FormatQ4_1T>(with_gemv_mma<FormatQ4_1T>(make_format_kernels_q8<FormatQ4_1T>())), 1);
    table[int(QType::Q8_0)] = with_gemv_stream<FormatQ8_0T>(
        with_gemv_async<FormatQ8_0T>(with_gemv_mma<FormatQ8_0T>(make_format_kernels_q8<FormatQ8_0T>())), 1);
}

namespace {
template <class L>
void pack_rows(const uint8_t* src, uint8_t* dst, int64_t n, int64_t k, bool pack) {
    const int64_t row_bytes = k / kTileWeights * L::kTileBytes;
    for (int64_t r = 0; r < n; ++r) {
        if (pack) L::pack_row(src + r * row_bytes, dst + r * row_bytes, k);
        else L::unpack_row(src + r * row_bytes, dst + r * row_bytes, k);
    }
}

bool tile8_permute(QType type, const uint8_t* src, uint8_t* dst, int64_t n, int64_t k, bool pack) {
    if (k <= 0 || k % kTileWeights) return false;
    switch (type) {
        case QType::Q4_0: pack_rows<FormatQ4_0T::L>(src, dst, n, k, pack); return true;
        case QType::Q4_1: pack_rows<FormatQ4_1T::L>(src, dst, n, k, pack); return true;
        case QType::Q8_0: pack_rows<FormatQ8_0T::L>(src, dst, n, k, pack); return true;
        default: return false;
    }
}
}  // namespace

bool tile8_pack(QType type, const uint8_t* gguf, uint8_t* tiled, int64_t n, int64_t k) {
    return tile8_permute(type, gguf, tiled, n, k, true);
}
bool tile8_unpack(QType type, const uint8_t* tiled, uint8_t* gguf, int64_t n, int64_t k) {
    return tile8_permute(type, tiled, gguf, n, k, false);
}

}  // namespace lowbit::cuda
