// The group formats' scalar reference (the spec): dequantize as (q - zero) * scale in f32, and the
// streaming matmul as sums in f32 in column order, one per group, each scaled once.
#include "../core/group_quant.h"

namespace lowbit {

namespace {

void dequant_row(const GroupWeights& w, int64_t j, float* out) {
    for (int64_t g = 0; g < w.groups; ++g) {
        const float s = w.scales[j * w.groups + g], z = w.zeros[j * w.groups + g];
        for (int64_t c = w.chunk_start[g] * kGroupChunk; c < w.chunk_start[g + 1] * kGroupChunk; ++c)
            out[c] = (static_cast<float>(group_code(w, j, c)) - z) * s;
    }
}

void gemv(const GroupWeights& w, int64_t j0, int64_t j1, const float* xp, const float* xg, int64_t m, float* y,
          int64_t ldy) {
    for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = 0; i < m; ++i) {
            float acc = 0.0f;
            for (int64_t g = 0; g < w.groups; ++g) {
                float dot = 0.0f;
                for (int64_t c = w.chunk_start[g] * kGroupChunk; c < w.chunk_start[g + 1] * kGroupChunk; ++c)
                    dot += xp[i * w.kp + c] * static_cast<float>(group_code(w, j, c));
                const float s = w.scales[j * w.groups + g], z = w.zeros[j * w.groups + g];
                acc += s * (dot - z * xg[i * w.groups + g]);
            }
            y[i * ldy + j] = acc;
        }
}

}  // namespace

const GroupKernels& group_kernels_generic() {
    static const GroupKernels table{dequant_row, gemv};
    return table;
}

}  // namespace lowbit
