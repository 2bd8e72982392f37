// The rows8 layout's definition (rows8.h): each block type's fields, and the scalar repack / unpack
// that is the spec the SIMD kernels read.
#include "rows8.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "blocks.h"
#include "thread_pool.h"

namespace lowbit {

namespace {

// A block's fields in struct order, as byte counts: 2 = a 2-byte value (stored 8 side by side),
// anything else a byte array (a multiple of 4 bytes, stored in 4-byte chunks of the 8 rows).
struct Fields {
    int count = 0;
    int size[6] = {};
};

constexpr Fields fields(std::initializer_list<int> sizes) {
    Fields f;
    for (int s : sizes) f.size[f.count++] = s;
    return f;
}

constexpr int total(const Fields& f) {
    int t = 0;
    for (int i = 0; i < f.count; ++i) t += f.size[i];
    return t;
}

// The block structs of blocks.h, field by field (sizes static_asserted against the structs below).
constexpr Fields kQ4_0 = fields({2, 16});
constexpr Fields kQ4_1 = fields({2, 2, 16});
constexpr Fields kQ5_0 = fields({2, 4, 16});
constexpr Fields kQ5_1 = fields({2, 2, 4, 16});
constexpr Fields kQ8_0 = fields({2, 32});
constexpr Fields kQ2_K = fields({16, 64, 2, 2});
constexpr Fields kQ3_K = fields({32, 64, 12, 2});
constexpr Fields kQ4_K = fields({2, 2, 12, 128});
constexpr Fields kQ5_K = fields({2, 2, 12, 32, 128});
constexpr Fields kQ6_K = fields({128, 64, 16, 2});
constexpr Fields kIQ4_NL = fields({2, 16});
constexpr Fields kIQ4_XS = fields({2, 2, 4, 128});
static_assert(total(kQ4_0) == sizeof(block_q4_0) && total(kQ4_1) == sizeof(block_q4_1), "rows8 fields");
static_assert(total(kQ5_0) == sizeof(block_q5_0) && total(kQ5_1) == sizeof(block_q5_1), "rows8 fields");
static_assert(total(kQ8_0) == sizeof(block_q8_0) && total(kQ2_K) == sizeof(block_q2_K), "rows8 fields");
static_assert(total(kQ3_K) == sizeof(block_q3_K) && total(kQ4_K) == sizeof(block_q4_K), "rows8 fields");
static_assert(total(kQ5_K) == sizeof(block_q5_K) && total(kQ6_K) == sizeof(block_q6_K), "rows8 fields");
static_assert(total(kIQ4_NL) == sizeof(block_iq4_nl) && total(kIQ4_XS) == sizeof(block_iq4_xs), "rows8 fields");
static_assert(offsetof(block_q2_K, d) == 80 && offsetof(block_q3_K, d) == 108 && offsetof(block_q6_K, d) == 208 &&
              offsetof(block_iq4_xs, scales_l) == 4 && offsetof(block_q5_K, qh) == 16, "rows8 field order");

const Fields* fields_of(QType t) {
    switch (t) {
        case QType::Q4_0: return &kQ4_0;
        case QType::Q4_1: return &kQ4_1;
        case QType::Q5_0: return &kQ5_0;
        case QType::Q5_1: return &kQ5_1;
        case QType::Q8_0: return &kQ8_0;
        case QType::Q2_K: return &kQ2_K;
        case QType::Q3_K: return &kQ3_K;
        case QType::Q4_K: return &kQ4_K;
        case QType::Q5_K: return &kQ5_K;
        case QType::Q6_K: return &kQ6_K;
        case QType::IQ4_NL: return &kIQ4_NL;
        case QType::IQ4_XS: return &kIQ4_XS;
        default: return nullptr;
    }
}

[[noreturn]] void fail(const std::string& op, const std::string& msg) {
    throw std::invalid_argument("[" + op + "] " + msg);
}

const Fields& checked_fields(const char* op, QType t, int64_t n, int64_t k) {
    const Fields* f = fields_of(t);
    if (!f) fail(op, std::string(type_info(t).name) + " has no rows8 layout (quantized weight types only)");
    if (n <= 0 || n % kRows8) fail(op, "rows8 needs a number of rows that is a multiple of 8, got " + std::to_string(n));
    if (k <= 0 || k % type_info(t).block_size)
        fail(op, "k=" + std::to_string(k) + " is not a multiple of " + type_info(t).name + "'s block size");
    return *f;
}

// One group block: the 8 rows' blocks b (row r's at rows[r]) <-> its rows8 bytes at g8. A template on
// the type's fields, so every loop has constant bounds and the copies are unrolled into fixed-size
// moves (with run-time field sizes unpacking ran at ~4 GB/s, a quarter of a 4-bit GEMM at m = 32).
template <const Fields& F, bool kPack>
void move_group_block(uint8_t* const* rows, uint8_t* g8) {
    int off = 0;
    for (int i = 0; i < F.count; ++i) {
        const int s = F.size[i];
        uint8_t* dst = g8 + kRows8 * off;
        for (int r = 0; r < kRows8; ++r) {
            for (int c = 0; c < (s == 2 ? 1 : s / 4); ++c) {
                uint8_t* packed = dst + (s == 2 ? 2 * r : 32 * c + 4 * r);
                uint8_t* plain = rows[r] + off + (s == 2 ? 0 : 4 * c);
                if (s == 2)
                    std::memcpy(kPack ? packed : plain, kPack ? plain : packed, 2);
                else
                    std::memcpy(kPack ? packed : plain, kPack ? plain : packed, 4);
            }
        }
        off += s;
    }
}

using move_fn = void (*)(uint8_t* const* rows, uint8_t* g8);

template <bool kPack>
move_fn mover(QType t) {
    switch (t) {
        case QType::Q4_0: return move_group_block<kQ4_0, kPack>;
        case QType::Q4_1: return move_group_block<kQ4_1, kPack>;
        case QType::Q5_0: return move_group_block<kQ5_0, kPack>;
        case QType::Q5_1: return move_group_block<kQ5_1, kPack>;
        case QType::Q8_0: return move_group_block<kQ8_0, kPack>;
        case QType::Q2_K: return move_group_block<kQ2_K, kPack>;
        case QType::Q3_K: return move_group_block<kQ3_K, kPack>;
        case QType::Q4_K: return move_group_block<kQ4_K, kPack>;
        case QType::Q5_K: return move_group_block<kQ5_K, kPack>;
        case QType::Q6_K: return move_group_block<kQ6_K, kPack>;
        case QType::IQ4_NL: return move_group_block<kIQ4_NL, kPack>;
        case QType::IQ4_XS: return move_group_block<kIQ4_XS, kPack>;
        default: return nullptr;
    }
}

template <bool kPack>
void convert(const char* op, QType t, const void* rowmajor_c, void* rows8_c, int64_t n, int64_t k, int threads) {
    checked_fields(op, t, n, k);
    const move_fn move = mover<kPack>(t);
    const TypeInfo& ti = type_info(t);
    const int64_t nb = k / ti.block_size, rb = row_bytes(ti, k), bs = ti.type_size;
    auto* rowmajor = static_cast<uint8_t*>(const_cast<void*>(rowmajor_c));
    auto* rows8 = static_cast<uint8_t*>(rows8_c);
    ThreadPool::global().parallel_for(n / kRows8, threads, [&](int64_t g0, int64_t g1) {
        for (int64_t g = g0; g < g1; ++g) {
            uint8_t* rows[kRows8];
            for (int r = 0; r < kRows8; ++r) rows[r] = rowmajor + (g * kRows8 + r) * rb;
            for (int64_t b = 0; b < nb; ++b) {
                move(rows, rows8 + g * kRows8 * rb + b * kRows8 * bs);
                for (auto& p : rows) p += bs;
            }
        }
    });
}

}  // namespace

bool rows8_supported(QType t) { return fields_of(t) != nullptr; }

int rows8_fields(QType t, const int** sizes) {
    const Fields* f = fields_of(t);
    if (!f) return 0;
    *sizes = f->size;
    return f->count;
}

void repack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k, int threads) {
    convert<true>("repack_rows8", t, src, dst, n, k, threads);
}

void unpack_rows8(QType t, const void* src, void* dst, int64_t n, int64_t k, int threads) {
    convert<false>("unpack_rows8", t, dst, const_cast<void*>(src), n, k, threads);
}

void unpack_rows8_rows(QType t, const void* src, int64_t n, int64_t k, const int64_t* ids, int64_t count, void* dst) {
    checked_fields("unpack_rows8_rows", t, n, k);
    const move_fn move = mover<false>(t);
    const TypeInfo& ti = type_info(t);
    const int64_t nb = k / ti.block_size, rb = row_bytes(ti, k), bs = ti.type_size;
    const auto* in = static_cast<const uint8_t*>(src);
    auto* out = static_cast<uint8_t*>(dst);
    std::vector<uint8_t> group(static_cast<size_t>(kRows8 * bs));
    for (int64_t i = 0; i < count; ++i) {
        const int64_t id = ids[i];
        if (id < 0 || id >= n) fail("unpack_rows8_rows", "row " + std::to_string(id) + " is outside [0, " + std::to_string(n) + ")");
        const int64_t g = id / kRows8;
        uint8_t* rows[kRows8];
        for (int r = 0; r < kRows8; ++r) rows[r] = group.data() + r * bs;
        for (int64_t b = 0; b < nb; ++b) {
            // one group block unpacked, the wanted row kept (the other 7 are a few dozen bytes each)
            move(rows, const_cast<uint8_t*>(in + g * kRows8 * rb + b * kRows8 * bs));
            std::memcpy(out + i * rb + b * bs, rows[id % kRows8], static_cast<size_t>(bs));
        }
    }
}

void gemm_rows8_unpacked(const GemmArgs& p, QType t, gemm_fn gemm, rows8_unpack_fn unpack) {
    constexpr int64_t kChunk = 64;
    thread_local std::vector<uint8_t> rows;
    rows.resize(static_cast<size_t>(kChunk * p.w_row_bytes));
    for (int64_t j = 0; j < p.n; j += kChunk) {
        const int64_t nj = std::min(kChunk, p.n - j);
        const void* src = static_cast<const uint8_t*>(p.w) + j * p.w_row_bytes;
        if (unpack)
            unpack(t, src, rows.data(), nj, p.k);
        else
            unpack_rows8(t, src, rows.data(), nj, p.k, 1);
        GemmArgs q = p;
        q.n = nj;
        q.w = rows.data();
        q.c = p.c + j;
        gemm(q);
    }
}

}  // namespace lowbit
