// lowbit._core.ggml_softmax / ggml_silu: the forward pass's softmax and SiLU with ggml's rounding
// (csrc/core/ggml_math.h), in C++ because the numpy emulation of ggml's fma-based exp took ~75% of a
// 512-token SmolLM2 prompt.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../core/attention.h"
#include "../core/kernels.h"
#include "../core/thread_pool.h"
#include "../cpu/avx2/avx2.h"
#include "../ref/ref.h"

namespace py = pybind11;
using namespace lowbit;

namespace {

// Generic unless AVX2 (with FMA) is compiled in, supported and not lowered away: then the FMA is inline.
bool use_avx2(const std::string& op, const std::string& isa_name) {
    Isa cap = default_isa();
    if (!isa_name.empty() && !parse_isa(isa_name, &cap))
        throw std::invalid_argument("[" + op + "] unknown ISA '" + isa_name + "'");
    return cap >= Isa::AVX2 && isa_supported(Isa::AVX2);
}

py::array_t<float, py::array::c_style> f32_array(const std::string& op, py::array a) {
    if (!py::isinstance<py::array_t<float>>(a) || !(a.flags() & py::array::c_style))
        throw std::invalid_argument("[" + op + "] expected a C-contiguous float32 array");
    return py::array_t<float, py::array::c_style>::ensure(a);
}

// A C-contiguous float16 array (numpy 'e'), as raw fp16_t.
const fp16_t* f16_data(const std::string& op, const char* name, const py::array& a) {
    if (a.dtype().kind() != 'f' || a.itemsize() != 2 || !(a.flags() & py::array::c_style))
        throw std::invalid_argument("[" + op + "] " + name + " must be a C-contiguous float16 array, got dtype " +
                                    std::string(py::str(a.dtype())));
    return static_cast<const fp16_t*>(a.data());
}

}  // namespace

void register_model_math(py::module_& m) {
    m.def("ggml_softmax", [](py::array s_obj, py::object valid_obj, bool avx512, bool round_f16, int threads,
                             const std::string& isa) {
        // s: (..., n) f32, softmax over the last axis in place; valid: (rows,) int64, entries of row r from
        // valid[r] on are masked (come out 0), None: none masked.
        auto s = f32_array("ggml_softmax", s_obj);
        if (s.ndim() < 1 || !s.writeable()) throw std::invalid_argument("[ggml_softmax] expected a writable array");
        const int64_t n = s.shape(s.ndim() - 1), rows = n ? s.size() / n : 0;
        const int64_t* valid = nullptr;
        py::array_t<int64_t, py::array::c_style> v;
        if (!valid_obj.is_none()) {
            v = py::array_t<int64_t, py::array::c_style>::ensure(valid_obj);
            if (!v || v.ndim() != 1 || v.shape(0) != rows)
                throw std::invalid_argument("[ggml_softmax] valid must be (rows,) int64 with rows = " + std::to_string(rows));
            for (int64_t r = 0; r < rows; ++r)
                if (v.data()[r] < 1 || v.data()[r] > n)
                    throw std::invalid_argument("[ggml_softmax] valid lengths must be in [1, n]");
            valid = v.data();
        }
        const bool fast = use_avx2("ggml_softmax", isa);
        const int nt = threads > 0 ? threads : default_num_threads();
        float* p = s.mutable_data();
        py::gil_scoped_release release;
        ThreadPool::global().parallel_for(rows, nt, [&](int64_t b, int64_t e) {
            (fast ? avx2::ggml_softmax_rows : ref::ggml_softmax_rows)(p, b, e, n, valid, avx512, round_f16);
        });
    }, py::arg("s"), py::arg("valid") = py::none(), py::arg("avx512") = true, py::arg("round_f16") = false,
       py::arg("threads") = 0, py::arg("isa") = "");
    m.def("ggml_silu", [](py::array x_obj, bool avx512, const std::string& isa, int threads) {
        auto x = f32_array("ggml_silu", x_obj);
        py::array_t<float> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        const bool fast = use_avx2("ggml_silu", isa);
        const float* xp = x.data();
        float* yp = y.mutable_data();
        const int64_t n = x.size();
        const int nt = threads > 0 ? threads : default_num_threads();
        {
            py::gil_scoped_release release;
            constexpr int64_t kChunk = 4096;  // elements per task: enough work to pay for the hand-off
            ThreadPool::global().parallel_for((n + kChunk - 1) / kChunk, nt, [&](int64_t b, int64_t e) {
                const int64_t lo = b * kChunk, hi = std::min(n, e * kChunk);
                (fast ? avx2::ggml_silu : ref::ggml_silu)(xp + lo, yp + lo, hi - lo, avx512);
            });
        }
        return y;
    }, py::arg("x"), py::arg("avx512") = true, py::arg("isa") = "", py::arg("threads") = 0);
    m.def("ggml_swiglu", [](py::array g_obj, py::array u_obj, bool avx512, const std::string& isa, int threads) {
        // silu(g) * u, the feed-forward's gate: the same bits as ggml_silu(g) * u in numpy, in one pass.
        auto g = f32_array("ggml_swiglu", g_obj);
        auto u = f32_array("ggml_swiglu", u_obj);
        if (g.ndim() != u.ndim() || !std::equal(g.shape(), g.shape() + g.ndim(), u.shape()))
            throw std::invalid_argument("[ggml_swiglu] g and u must have the same shape");
        py::array_t<float> y(std::vector<py::ssize_t>(g.shape(), g.shape() + g.ndim()));
        const bool fast = use_avx2("ggml_swiglu", isa);
        const float* gp = g.data();
        const float* up = u.data();
        float* yp = y.mutable_data();
        const int64_t n = g.size();
        const int nt = threads > 0 ? threads : default_num_threads();
        {
            py::gil_scoped_release release;
            constexpr int64_t kChunk = 4096;
            ThreadPool::global().parallel_for((n + kChunk - 1) / kChunk, nt, [&](int64_t b, int64_t e) {
                const int64_t lo = b * kChunk, hi = std::min(n, e * kChunk);
                (fast ? avx2::ggml_silu : ref::ggml_silu)(gp + lo, yp + lo, hi - lo, avx512);
                for (int64_t i = lo; i < hi; ++i) yp[i] *= up[i];
            });
        }
        return y;
    }, py::arg("g"), py::arg("u"), py::arg("avx512") = true, py::arg("isa") = "", py::arg("threads") = 0);
    m.def("attention_f16", [](py::array q_obj, py::array k_obj, py::array v_obj, int64_t pos0, float scale,
                              bool avx512, int threads, const std::string& isa) {
        // q: (T, H, hd) f32; k, v: (n_ctx, Hkv, hd) f16 cache of one layer with pos0 + T <= n_ctx.
        const std::string op = "attention_f16";
        auto q = f32_array(op, q_obj);
        if (q.ndim() != 3 || k_obj.ndim() != 3 || v_obj.ndim() != 3)
            throw std::invalid_argument("[attention_f16] expected q (T, H, hd), k and v (n_ctx, Hkv, hd)");
        const fp16_t* kp = f16_data(op, "k", k_obj);
        const fp16_t* vp = f16_data(op, "v", v_obj);
        const int64_t T = q.shape(0), H = q.shape(1), hd = q.shape(2);
        const int64_t n_ctx = k_obj.shape(0), Hkv = k_obj.shape(1);
        if (k_obj.shape(2) != hd || v_obj.shape(0) != n_ctx || v_obj.shape(1) != Hkv || v_obj.shape(2) != hd)
            throw std::invalid_argument("[attention_f16] k and v must both be (n_ctx, Hkv, " + std::to_string(hd) + ")");
        if (T < 1 || hd < 1 || Hkv < 1 || H % Hkv)
            throw std::invalid_argument("[attention_f16] need T >= 1 and H a multiple of Hkv, got T=" +
                                        std::to_string(T) + " H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv));
        if (pos0 < 0 || pos0 + T > n_ctx)
            throw std::invalid_argument("[attention_f16] positions " + std::to_string(pos0) + ".." +
                                        std::to_string(pos0 + T - 1) + " do not fit the cache of " + std::to_string(n_ctx));
        py::array_t<float> out({T, H * hd});
        AttentionArgs a{q.data(), kp, vp, out.mutable_data(), T, H, Hkv, hd, pos0, scale, avx512};
        const bool simd = use_avx2(op, isa);
        const int nt = threads > 0 ? threads : default_num_threads();
        {
            py::gil_scoped_release release;
            attention_f16(a, nt, simd);
        }
        return out;
    }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("pos0"), py::arg("scale"), py::arg("avx512") = true,
       py::arg("threads") = 0, py::arg("isa") = "",
       "Causal GQA attention of q at positions pos0.. over f16 cache rows 0..pos0+T-1 (llama.attention's numerics).");
}
