// The single table of quantization-type facts. Python reads it through _core.types(); no other
// file restates block sizes, byte counts or GGUF ids.
#pragma once
#include <cstdint>
#include <string>

namespace lowbit {

// Dense index of the types lowbit implements (not the GGUF id: that is a column of the table).
enum class QType : int {
    F32, F16, BF16,
    Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
    Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
    IQ4_NL, IQ4_XS,
    COUNT
};
constexpr int kTypeCount = static_cast<int>(QType::COUNT);

struct TypeInfo {
    QType type;
    const char* name;      // lowercase, as lowbit's Python API spells it ("q4_k")
    int gguf_id;           // ggml_type / GGUF tensor type id
    int block_size;        // weights per block
    int type_size;         // bytes per block
    QType dot_type;        // type activations are quantized to for this type's dot product
    bool is_quantized;     // false for f32/f16/bf16
    bool has_imatrix;      // llama.cpp has an importance-weighted quantization path
    bool is_activation;    // an activation-only type (q8_1, q8_K): not stored in model files
};

const TypeInfo& type_info(QType t);
// Returns nullptr for an unknown name (case-insensitive).
const TypeInfo* find_type(const std::string& name);

inline double bits_per_weight(const TypeInfo& ti) { return 8.0 * ti.type_size / ti.block_size; }
inline int64_t row_bytes(const TypeInfo& ti, int64_t k) { return k / ti.block_size * ti.type_size; }

}  // namespace lowbit
