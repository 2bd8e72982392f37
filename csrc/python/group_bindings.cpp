// _core.group_dequantize / _core.group_matmul: the numpy boundary of csrc/core/group_quant.h. Every
// array's dtype, layout and size is checked, and the layout itself (check_group_weights), before a
// kernel reads a pointer; the GIL is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "../core/group_quant.h"
#include "../core/thread_pool.h"

namespace py = pybind11;
using namespace lowbit;

namespace {

[[noreturn]] void fail(const std::string& op, const std::string& msg) {
    throw std::invalid_argument("[" + op + "] " + msg);
}

template <typename T>
py::array_t<T, py::array::c_style> need(const std::string& op, const py::array& a, const char* name, int64_t size,
                                        const char* dtype) {
    if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style))
        fail(op, std::string(name) + " must be a C-contiguous " + dtype + " array");
    if (a.size() != size)
        fail(op, std::string(name) + " must hold " + std::to_string(size) + " values, got " + std::to_string(a.size()));
    return py::array_t<T, py::array::c_style>::ensure(a);
}

Isa isa_or_default(const std::string& op, const std::string& name) {
    if (name.empty()) return default_isa();
    Isa isa;
    if (!parse_isa(name, &isa)) fail(op, "unknown ISA '" + name + "'");
    if (!isa_supported(isa)) fail(op, "ISA '" + name + "' is not compiled in or not supported by this CPU");
    return isa;
}

int threads_or_default(const std::string& op, int threads) {
    if (threads < 0) fail(op, "threads must be >= 1, got " + std::to_string(threads));
    return threads == 0 ? default_num_threads() : threads;
}

// Holds the checked arrays alive while the GroupWeights view points into them.
struct Layout {
    py::array_t<uint8_t, py::array::c_style> codes;
    py::array_t<float, py::array::c_style> scales, zeros;
    py::array_t<int32_t, py::array::c_style> chunk_start, xsrc;
    GroupWeights w{};
};

Layout layout(const std::string& op, py::array codes, py::array scales, py::array zeros, py::array chunk_start,
              py::array xsrc, int bits, int64_t n, int64_t k) {
    Layout l;
    if (n < 1 || k < 1) fail(op, "n and k must be >= 1, got n=" + std::to_string(n) + " k=" + std::to_string(k));
    if (chunk_start.ndim() != 1 || chunk_start.size() < 2) fail(op, "chunk_start must be 1-D with >= 2 entries");
    const int64_t G = chunk_start.size() - 1;
    l.chunk_start = need<int32_t>(op, chunk_start, "chunk_start", G + 1, "int32");
    const int64_t kp = int64_t(l.chunk_start.data()[G]) * kGroupChunk;
    if (kp < k || kp > 64 * k + 64 * kGroupChunk * G) fail(op, "chunk_start's last entry does not fit k");
    const int64_t rb = bits == 4 ? kp / 2 : kp;
    l.codes = need<uint8_t>(op, codes, "codes", n * rb, "uint8");
    l.scales = need<float>(op, scales, "scales", n * G, "float32");
    l.zeros = need<float>(op, zeros, "zeros", n * G, "float32");
    l.xsrc = need<int32_t>(op, xsrc, "xsrc", kp, "int32");
    l.w = GroupWeights{bits, n, k, kp, G, l.codes.data(), rb, l.scales.data(), l.zeros.data(), l.chunk_start.data(),
                       l.xsrc.data()};
    check_group_weights(op.c_str(), l.w);
    return l;
}

py::array_t<float> group_dequantize_py(py::array codes, py::array scales, py::array zeros, py::array chunk_start,
                                       py::array xsrc, int bits, int64_t n, int64_t k, int threads,
                                       const std::string& isa_name_) {
    const std::string op = "dequantize";
    Layout l = layout(op, codes, scales, zeros, chunk_start, xsrc, bits, n, k);
    const Isa isa = isa_or_default(op, isa_name_);
    const int nt = threads_or_default(op, threads);
    py::array_t<float> out({n, k});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        group_dequantize(l.w, o, nt, isa);
    }
    return out;
}

// x: (m, k) f32 C-contiguous -> (m, n) f32
py::array_t<float> group_matmul_py(py::array x_obj, py::array codes, py::array scales, py::array zeros,
                                   py::array chunk_start, py::array xsrc, int bits, int64_t n, int64_t k, int threads,
                                   const std::string& isa_name_) {
    const std::string op = "matmul";
    Layout l = layout(op, codes, scales, zeros, chunk_start, xsrc, bits, n, k);
    const Isa isa = isa_or_default(op, isa_name_);
    const int nt = threads_or_default(op, threads);
    if (!py::isinstance<py::array_t<float>>(x_obj))
        throw py::type_error("[matmul] x must be a float32 array, got dtype " + std::string(py::str(x_obj.dtype())));
    if (x_obj.ndim() != 2 || x_obj.shape(1) != k || x_obj.shape(0) < 1 || !(x_obj.flags() & py::array::c_style))
        fail(op, "x must be a C-contiguous (m >= 1, k=" + std::to_string(k) + ") array");
    auto x = py::array_t<float, py::array::c_style>::ensure(x_obj);
    const int64_t m = x.shape(0);
    py::array_t<float> y({m, n});
    const float* xp = x.data();
    float* yp = y.mutable_data();
    {
        py::gil_scoped_release release;
        group_matmul(l.w, xp, m, yp, nt, isa);
    }
    return y;
}

}  // namespace

void register_group(py::module_& m) {
    m.def("group_dequantize", &group_dequantize_py, py::arg("codes"), py::arg("scales"), py::arg("zeros"),
          py::arg("chunk_start"), py::arg("xsrc"), py::arg("bits"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, py::arg("isa") = "");
    m.def("group_matmul", &group_matmul_py, py::arg("x"), py::arg("codes"), py::arg("scales"), py::arg("zeros"),
          py::arg("chunk_start"), py::arg("xsrc"), py::arg("bits"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, py::arg("isa") = "");
    m.def("group_kernels", [] {
        py::dict d;
        Isa a = Isa::GENERIC, b = Isa::GENERIC;
        resolve_group_dequant(default_isa(), &a);
        resolve_group_gemv(default_isa(), &b);
        d["dequantize"] = isa_name(a);
        d["gemv"] = isa_name(b);
        return d;
    }, "The ISA of each group-format kernel at the default level.");
}
