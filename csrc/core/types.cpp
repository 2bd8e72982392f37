#include "types.h"

#include <cctype>

#include "blocks.h"

namespace lowbit {

namespace {
// name, gguf id, block, bytes, dot type, quantized, imatrix path, activation-only
// GGUF ids are ggml's enum ggml_type; byte counts come from the block structs.
constexpr TypeInfo kTable[kTypeCount] = {
    {QType::F32,    "f32",     0, 1,      4,                   QType::F32,  false, false, false},
    {QType::F16,    "f16",     1, 1,      2,                   QType::F16,  false, false, false},
    {QType::BF16,   "bf16",   30, 1,      2,                   QType::BF16, false, false, false},
    {QType::Q4_0,   "q4_0",    2, QK4_0,  sizeof(block_q4_0),   QType::Q8_0, true,  true,  false},
    {QType::Q4_1,   "q4_1",    3, QK4_1,  sizeof(block_q4_1),   QType::Q8_1, true,  true,  false},
    {QType::Q5_0,   "q5_0",    6, QK5_0,  sizeof(block_q5_0),   QType::Q8_0, true,  true,  false},
    {QType::Q5_1,   "q5_1",    7, QK5_1,  sizeof(block_q5_1),   QType::Q8_1, true,  true,  false},
    {QType::Q8_0,   "q8_0",    8, QK8_0,  sizeof(block_q8_0),   QType::Q8_0, true,  false, false},
    {QType::Q8_1,   "q8_1",    9, QK8_1,  sizeof(block_q8_1),   QType::Q8_1, true,  false, true},
    {QType::Q2_K,   "q2_k",   10, QK_K,   sizeof(block_q2_K),   QType::Q8_K, true,  true,  false},
    {QType::Q3_K,   "q3_k",   11, QK_K,   sizeof(block_q3_K),   QType::Q8_K, true,  true,  false},
    {QType::Q4_K,   "q4_k",   12, QK_K,   sizeof(block_q4_K),   QType::Q8_K, true,  true,  false},
    {QType::Q5_K,   "q5_k",   13, QK_K,   sizeof(block_q5_K),   QType::Q8_K, true,  true,  false},
    {QType::Q6_K,   "q6_k",   14, QK_K,   sizeof(block_q6_K),   QType::Q8_K, true,  true,  false},
    {QType::Q8_K,   "q8_k",   15, QK_K,   sizeof(block_q8_K),   QType::Q8_K, true,  false, true},
    {QType::IQ4_NL, "iq4_nl", 20, QK4_NL, sizeof(block_iq4_nl), QType::Q8_0, true,  true,  false},
    {QType::IQ4_XS, "iq4_xs", 23, QK_K,   sizeof(block_iq4_xs), QType::Q8_K, true,  true,  false},
};

constexpr bool table_is_in_enum_order() {
    for (int i = 0; i < kTypeCount; ++i)
        if (static_cast<int>(kTable[i].type) != i) return false;
    return true;
}
static_assert(table_is_in_enum_order(), "type table rows must follow the QType enum order");
}  // namespace

const TypeInfo& type_info(QType t) { return kTable[static_cast<int>(t)]; }

const TypeInfo* find_type(const std::string& name) {
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const TypeInfo& ti : kTable)
        if (lower == ti.name) return &ti;
    return nullptr;
}

}  // namespace lowbit
