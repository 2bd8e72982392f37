// lowbit._core.ggml_softmax / ggml_silu: the forward pass's softmax and SiLU with ggml's rounding
// (csrc/core/ggml_math.h), in C++ because the numpy emulation of ggml's fma-based exp took ~75% of a
// 512-token SmolLM2 prompt.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/attention.h"
#include "../core/kernels.h"
#include "../core/llama_block.h"
#include "../core/rows8.h"
#include "../core/types.h"
#include "../core/thread_pool.h"
#include "../cpu/avx2/avx2.h"
#include "../ref/ref.h"

namespace py = pybind11;
using namespace lowbit;

namespace {

// Generic unless AVX2 (with FMA) is compiled in, supported and not lowered away: then the FMA is inline.
// The AVX2 row kernels where this build has them (x86), the reference otherwise (AArch64 builds have no
// avx2 symbols at all).
inline decltype(&ref::ggml_silu) silu_fn(bool fast) {
#if defined(LOWBIT_HAVE_AVX2)
    return fast ? avx2::ggml_silu : ref::ggml_silu;
#else
    (void)fast;
    return ref::ggml_silu;
#endif
}
inline decltype(&ref::ggml_softmax_rows) softmax_rows_fn(bool fast) {
#if defined(LOWBIT_HAVE_AVX2)
    return fast ? avx2::ggml_softmax_rows : ref::ggml_softmax_rows;
#else
    (void)fast;
    return ref::ggml_softmax_rows;
#endif
}

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

// LlamaBlocks: the weights of every layer described once (pointers into the numpy arrays, which it
// keeps alive), and run() for a run of layers through lowbit::llama_blocks.
class LlamaBlocks {
public:
    LlamaBlocks(const py::dict& cfg, const py::list& layers) {
        auto geti = [&](const char* key) { return cfg[key].cast<int64_t>(); };
        cfg_.n_embd = geti("n_embd");
        cfg_.n_ff = geti("n_ff");
        cfg_.n_head = geti("n_head");
        cfg_.n_head_kv = geti("n_head_kv");
        cfg_.head_dim = geti("head_dim");
        cfg_.n_rot = geti("n_rot");
        cfg_.rope_neox = cfg["rope_neox"].cast<bool>();
        cfg_.rms_eps = cfg["rms_eps"].cast<float>();
        cfg_.attention_scale = cfg["attention_scale"].cast<float>();
        cfg_.residual_scale = cfg["residual_scale"].cast<float>();
        cfg_.v512 = cfg["avx512"].cast<bool>();
        if (cfg_.n_embd < 1 || cfg_.n_ff < 1 || cfg_.n_head < 1 || cfg_.n_head_kv < 1 || cfg_.head_dim < 1 ||
            cfg_.n_head % cfg_.n_head_kv || cfg_.n_rot < 0 || cfg_.n_rot > cfg_.head_dim || cfg_.n_rot % 2)
            fail("inconsistent config");
        const int64_t d = cfg_.n_embd, nq = cfg_.n_head * cfg_.head_dim, nkv = cfg_.n_head_kv * cfg_.head_dim;
        for (py::size_t i = 0; i < layers.size(); ++i) {
            BlockLayer lw;
            const bool present = !layers[i].is_none();
            if (present) {
                const py::dict ld = layers[i].cast<py::dict>();
                const std::string at = "layer " + std::to_string(i) + " ";
                lw.attn_norm = vec(ld["attn_norm"], d, at + "attn_norm");
                lw.ffn_norm = vec(ld["ffn_norm"], d, at + "ffn_norm");
                lw.wq = mat(ld["wq"], nq, d, at + "wq");
                lw.wk = mat(ld["wk"], nkv, d, at + "wk");
                lw.wv = mat(ld["wv"], nkv, d, at + "wv");
                lw.wo = mat(ld["wo"], d, nq, at + "wo");
                lw.gate = mat(ld["w_gate"], cfg_.n_ff, d, at + "w_gate");
                lw.up = mat(ld["w_up"], cfg_.n_ff, d, at + "w_up");
                lw.down = mat(ld["w_down"], d, cfg_.n_ff, at + "w_down");
                lw.bq = ld.contains("bq") ? vec(ld["bq"], nq, at + "bq") : nullptr;
                lw.bk = ld.contains("bk") ? vec(ld["bk"], nkv, at + "bk") : nullptr;
                lw.bv = ld.contains("bv") ? vec(ld["bv"], nkv, at + "bv") : nullptr;
            }
            layers_.push_back(lw);
            present_.push_back(present);
        }
    }

    // x: (T, n_embd) f32, updated in place; cache_k/v: (n_layer, n_ctx, n_head_kv, head_dim) f16;
    // cos/sin: (T, n_rot/2) f32; layers [first, last).
    void run(py::array x_obj, int64_t pos0, py::array k_obj, py::array v_obj, py::array cos_obj, py::array sin_obj,
             int64_t first, int64_t last, int threads, const std::string& isa_name) {
        auto x = f32_array("llama_blocks", x_obj);
        auto cs = f32_array("llama_blocks", cos_obj);
        auto sn = f32_array("llama_blocks", sin_obj);
        if (!x.writeable() || x.ndim() != 2 || x.shape(1) != cfg_.n_embd || x.shape(0) < 1)
            fail("x must be a writable (T, " + std::to_string(cfg_.n_embd) + ") float32 array");
        const int64_t T = x.shape(0), half = cfg_.n_rot / 2;
        for (const auto* t : {&cs, &sn})
            if (t->ndim() != 2 || t->shape(0) != T || t->shape(1) != half)
                fail("cos and sin must be (" + std::to_string(T) + ", " + std::to_string(half) + ") float32");
        if (first < 0 || last > int64_t(layers_.size()) || first > last) fail("layer range out of bounds");
        for (int64_t l = first; l < last; ++l)
            if (!present_[l]) fail("layer " + std::to_string(l) + " was not described (it is not on the CPU)");
        BlockCache cache{};
        for (auto* o : {&k_obj, &v_obj}) {
            f16_data("llama_blocks", "the cache", *o);
            if (!o->writeable() || o->ndim() != 4 || o->shape(0) < last || o->shape(2) != cfg_.n_head_kv ||
                o->shape(3) != cfg_.head_dim || o->shape(1) != k_obj.shape(1))
                fail("cache k and v must be writable (n_layer, n_ctx, " + std::to_string(cfg_.n_head_kv) + ", " +
                     std::to_string(cfg_.head_dim) + ") float16 arrays");
        }
        cache.k = static_cast<fp16_t*>(k_obj.mutable_data());
        cache.v = static_cast<fp16_t*>(v_obj.mutable_data());
        cache.n_ctx = k_obj.shape(1);
        if (pos0 < 0 || pos0 + T > cache.n_ctx)
            fail("positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + T - 1) +
                 " do not fit the cache of " + std::to_string(cache.n_ctx));
        Isa isa = default_isa();
        if (!isa_name.empty() && (!parse_isa(isa_name, &isa) || !isa_supported(isa)))
            fail("ISA '" + isa_name + "' is unknown or not supported here");
        const bool simd = use_avx2("llama_blocks", isa_name);
        const int nt = threads > 0 ? threads : default_num_threads();
        float* xp = x.mutable_data();
        py::gil_scoped_release release;
        llama_blocks(cfg_, layers_.data(), first, last, xp, T, pos0, cache, cs.data(), sn.data(), nt, isa, simd);
    }

    int64_t n_layers() const { return int64_t(layers_.size()); }

private:
    [[noreturn]] static void fail(const std::string& msg) { throw std::invalid_argument("[llama_blocks] " + msg); }

    const float* vec(py::handle h, int64_t n, const std::string& what) {
        auto a = f32_array("llama_blocks", py::reinterpret_borrow<py::array>(h));
        if (a.size() != n) fail(what + " has " + std::to_string(a.size()) + " values, expected " + std::to_string(n));
        keep_.push_back(a);
        return a.data();
    }

    // (data uint8, qtype name, n, k[, layout "gguf" | "rows8"])
    BlockWeight mat(py::handle h, int64_t n, int64_t k, const std::string& what) {
        auto t = h.cast<py::tuple>();
        if (t.size() != 4 && t.size() != 5) fail(what + " must be (data, qtype, n, k[, layout])");
        py::array data = t[0].cast<py::array>();
        const TypeInfo* ti = find_type(t[1].cast<std::string>());
        if (!ti || ti->is_activation) fail(what + " has an unknown or activation-only type");
        if (t[2].cast<int64_t>() != n || t[3].cast<int64_t>() != k)
            fail(what + " is (" + std::to_string(t[2].cast<int64_t>()) + ", " + std::to_string(t[3].cast<int64_t>()) +
                 "), expected (" + std::to_string(n) + ", " + std::to_string(k) + ")");
        if (k % ti->block_size) fail(what + ": k is not a multiple of the block size");
        if (!py::isinstance<py::array_t<uint8_t>>(data) || !(data.flags() & py::array::c_style) ||
            data.nbytes() != n * row_bytes(*ti, k))
            fail(what + " data must be " + std::to_string(n * row_bytes(*ti, k)) + " C-contiguous uint8 bytes");
        Layout layout = Layout::GGUF;
        if (t.size() == 5) {
            const auto name = t[4].cast<std::string>();
            if (name == "rows8")
                layout = Layout::ROWS8;
            else if (name != "gguf")
                fail(what + " has an unknown layout '" + name + "' (gguf or rows8)");
            if (layout == Layout::ROWS8 && (!rows8_supported(ti->type) || n % kRows8))
                fail(what + ": rows8 needs a quantized type and rows % 8 == 0");
        }
        keep_.push_back(data);
        return BlockWeight{data.data(), ti->type, n, k, layout};
    }

    BlockConfig cfg_{};
    std::vector<BlockLayer> layers_;
    std::vector<bool> present_;
    std::vector<py::object> keep_;  // the arrays the pointers point into
};

}  // namespace

void register_model_math(py::module_& m) {
    m.def("ggml_cos_sin", [](py::array theta_obj) {
        // cos and sin of f32 angles with libm's cosf / sinf, as ggml's RoPE cache
        auto theta = f32_array("ggml_cos_sin", theta_obj);
        std::vector<py::ssize_t> shape(theta.shape(), theta.shape() + theta.ndim());
        py::array_t<float> c(shape), s(shape);
        rope_cos_sin(theta.data(), c.mutable_data(), s.mutable_data(), theta.size());
        return py::make_tuple(c, s);
    }, py::arg("theta"));
    m.def("ggml_rope", [](py::array x_obj, py::array cos_obj, py::array sin_obj, bool neox, int64_t n_rot) {
        // x: (T, H, head_dim) f32 -> a rotated copy; cos/sin: (T, n_rot / 2) f32
        auto x = f32_array("ggml_rope", x_obj);
        auto c = f32_array("ggml_rope", cos_obj);
        auto s = f32_array("ggml_rope", sin_obj);
        if (x.ndim() != 3 || c.ndim() != 2 || s.ndim() != 2 || n_rot < 2 || n_rot % 2 || n_rot > x.shape(2) ||
            c.shape(0) != x.shape(0) || c.shape(1) != n_rot / 2 || s.shape(0) != c.shape(0) || s.shape(1) != c.shape(1))
            throw std::invalid_argument("[ggml_rope] expected x (T, H, head_dim) and cos/sin (T, n_rot/2), "
                                        "n_rot even and <= head_dim");
        py::array_t<float> y(std::vector<py::ssize_t>{x.shape(0), x.shape(1), x.shape(2)});
        std::copy(x.data(), x.data() + x.size(), y.mutable_data());
        rope_rows(y.mutable_data(), x.shape(0), x.shape(1), x.shape(2), n_rot, neox, c.data(), s.data());
        return y;
    }, py::arg("x"), py::arg("cos"), py::arg("sin"), py::arg("neox"), py::arg("n_rot"));
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
            softmax_rows_fn(fast)(p, b, e, n, valid, avx512, round_f16);
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
                silu_fn(fast)(xp + lo, yp + lo, hi - lo, avx512);
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
                silu_fn(fast)(gp + lo, yp + lo, hi - lo, avx512);
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
    py::class_<LlamaBlocks>(m, "LlamaBlocks",
                            "The transformer blocks of a Llama-family model in one C++ call (see llama_block.h).")
        .def(py::init<const py::dict&, const py::list&>(), py::arg("cfg"), py::arg("layers"))
        .def("run", &LlamaBlocks::run, py::arg("x"), py::arg("pos0"), py::arg("cache_k"), py::arg("cache_v"),
             py::arg("cos"), py::arg("sin"), py::arg("first"), py::arg("last"), py::arg("threads") = 0,
             py::arg("isa") = "")
        .def_property_readonly("n_layers", &LlamaBlocks::n_layers);
}
