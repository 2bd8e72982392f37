// The rows8 layout: a weight matrix of any block type repacked, once at load, so that 8 rows are
// read as one stream with their blocks side by side. In it the SIMD kernels hold 8 outputs in the 8
// lanes of one register: a 4-byte chunk of 8 rows is one 32-byte load, and one integer dot against a
// broadcast dword of the activations adds 4 products to each of the 8 outputs. No per-block horizontal
// sums, no per-call transposition (ggml's CPU backend repacks q4_0 the same way: block_q4_0x8).
//
// Rows 8g..8g+7 form group g; for each block index b the group stores the 8 rows' blocks b field by
// field, in the block struct's order, 8 * sizeof(block) bytes at (g * nb + b) * 8 * sizeof(block):
//   a 2-byte field (d, m, dmin, scales_h) as 8 consecutive values, row r's at 2r;
//   a byte array (qs, qh, scales) of L bytes as L/4 chunks of 32 bytes, chunk c holding row r's bytes
//   4c..4c+3 at 4r.
// Every block type's fields are 2-byte values and byte arrays of a multiple of 4 bytes, so every
// quantized type has this layout; the size of the matrix does not change, and rows 8g.. start at the
// same byte offset as in the row-major (GGUF) layout. Only matrices with rows % 8 == 0 are repacked.
#pragma once
#include <cstdint>

#include "kernels.h"
#include "types.h"

namespace lowbit {

constexpr int kRows8 = 8;

// Whether type t has the rows8 layout (every quantized weight type; not the float and activation types).
bool rows8_supported(QType t);

// src: (n, row_bytes(t, k)) row-major blocks -> dst: the same bytes in the rows8 layout (n % 8 == 0).
// Threads split the groups. dst must not overlap src.
void repack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k, int threads);
// The inverse: rows8 -> row-major.
void unpack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k, int threads);
// Rows ids[0..count) of a rows8 matrix of n rows, unpacked to count row-major rows at dst (embedding
// lookups). Throws std::invalid_argument for an id outside [0, n).
void unpack_rows8_rows(QType t, const void* src, int64_t n, int64_t k, const int64_t* ids, int64_t count, void* dst);

// Type t's block fields in struct order as byte counts (2: a 2-byte value, else a byte array of a multiple
// of 4 bytes); returns their number, 0 for a type without the layout. For unpackers of other ISAs.
int rows8_fields(QType t, const int** sizes);

// A gemm over rows8 weights by the row-major kernel `gemm`: each 64-row stretch of the slice is unpacked
// into the calling thread's buffer first, so the results are that kernel's by construction, at the cost
// of a copy of the weights per call. The rows8 slot of types and ISAs without a rows8 kernel, and of
// the K-quants at many rows of x (their panel kernels are the faster there).
// unpack: an ISA's rows8 -> row-major converter for n rows (n % 8 == 0) with unpack_rows8's result, or
// nullptr for unpack_rows8 itself.
using rows8_unpack_fn = void (*)(QType t, const void* src, void* dst, int64_t n, int64_t k);
void gemm_rows8_unpacked(const GemmArgs& p, QType t, gemm_fn gemm, rows8_unpack_fn unpack = nullptr);

}  // namespace lowbit
