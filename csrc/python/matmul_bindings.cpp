// _core.matmul: the numpy boundary of csrc/core/matmul.h. Checks every argument (shape, dtype,
// layout, sizes) before any pointer is read; the GIL is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "../core/kernels.h"
#include "../core/matmul.h"
#include "../core/rows8.h"
#include "../core/thread_pool.h"
#include "../core/types.h"

namespace py = pybind11;
using namespace lowbit;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("[matmul] " + msg); }

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

Isa isa_or_default(const std::string& name) {
    if (name.empty()) return default_isa();
    Isa isa;
    if (!parse_isa(name, &isa)) fail("unknown ISA '" + name + "'");
    if (!isa_supported(isa)) fail("ISA '" + name + "' is not compiled in or not supported by this CPU");
    return isa;
}

// x: (m, k) f32 C-contiguous; w_data: (n, row_bytes) uint8 C-contiguous (or 1-D of n*row_bytes)
// -> (m, n) f32. threads: 0 = the default count.
py::array_t<float> matmul_py(py::array x_obj, py::array w_obj, const std::string& qtype, int64_t n, int64_t k,
                             int threads, const std::string& isa_name_, const std::string& layout_name) {
    const TypeInfo* ti = find_type(qtype);
    if (!ti) fail("unknown quantization type '" + qtype + "'");
    const Isa isa = isa_or_default(isa_name_);
    Layout layout = Layout::GGUF;
    if (layout_name == "rows8")
        layout = Layout::ROWS8;
    else if (layout_name != "gguf" && !layout_name.empty())
        fail("unknown layout '" + layout_name + "' (gguf or rows8)");
    if (threads < 0) fail("threads must be >= 1 (or 0 for the default), got " + std::to_string(threads));
    const int nthreads = threads == 0 ? default_num_threads() : threads;
    if (!py::isinstance<py::array_t<float>>(x_obj))
        throw py::type_error("[matmul] x must be a float32 array, got dtype " + std::string(py::str(x_obj.dtype())));
    if (x_obj.ndim() != 2) fail("x must be 2-D (m, k), got shape " + shape_of(x_obj));
    if (!(x_obj.flags() & py::array::c_style)) fail("x must be C-contiguous; call np.ascontiguousarray(x) first");
    if (!py::isinstance<py::array_t<uint8_t>>(w_obj))
        throw py::type_error("[matmul] w_data must be a uint8 array, got dtype " + std::string(py::str(w_obj.dtype())));
    if (!(w_obj.flags() & py::array::c_style)) fail("w_data must be C-contiguous");
    const int64_t m = x_obj.shape(0);
    if (x_obj.shape(1) != k)
        fail("x has k=" + std::to_string(x_obj.shape(1)) + " columns, expected k=" + std::to_string(k));
    if (m < 1) fail("x must have at least one row, got shape " + shape_of(x_obj));
    if (n < 1 || k < 1) fail("n and k must be >= 1, got n=" + std::to_string(n) + " k=" + std::to_string(k));
    if (k % ti->block_size != 0)
        fail("k=" + std::to_string(k) + " is not a multiple of " + ti->name + "'s block size " +
             std::to_string(ti->block_size));
    const int64_t rb = row_bytes(*ti, k);
    const bool shape_ok = (w_obj.ndim() == 2 && w_obj.shape(0) == n && w_obj.shape(1) == rb) ||
                          (w_obj.ndim() == 1 && w_obj.shape(0) == n * rb);
    if (!shape_ok)
        fail("w_data must be (" + std::to_string(n) + ", " + std::to_string(rb) + ") uint8 for " + std::to_string(n) +
             " rows of " + std::to_string(k) + " " + ti->name + " weights, got shape " + shape_of(w_obj));
    auto x = py::array_t<float, py::array::c_style>::ensure(x_obj);
    auto w = py::array_t<uint8_t, py::array::c_style>::ensure(w_obj);
    py::array_t<float> y({m, n});
    const float* xp = x.data();
    const uint8_t* wp = w.data();
    float* yp = y.mutable_data();
    {
        py::gil_scoped_release release;
        matmul(xp, m, k, wp, n, ti->type, yp, nthreads, isa, layout);
    }
    return y;
}

// The uint8 payload of n rows of k weights of type qtype, checked (shape or size, dtype, contiguity).
py::array_t<uint8_t, py::array::c_style> weight_bytes(const char* op, py::array obj, const TypeInfo& ti, int64_t n,
                                                      int64_t k) {
    const std::string o = std::string("[") + op + "] ";
    if (n < 1 || k < 1 || k % ti.block_size)
        throw std::invalid_argument(o + "n must be >= 1 and k a positive multiple of " + ti.name + "'s block size, got n=" +
                                    std::to_string(n) + " k=" + std::to_string(k));
    if (!py::isinstance<py::array_t<uint8_t>>(obj))
        throw py::type_error(o + "data must be a uint8 array, got dtype " + std::string(py::str(obj.dtype())));
    if (!(obj.flags() & py::array::c_style)) throw std::invalid_argument(o + "data must be C-contiguous");
    const int64_t bytes = n * row_bytes(ti, k);
    if (obj.nbytes() != bytes)
        throw std::invalid_argument(o + std::to_string(n) + " rows of " + std::to_string(k) + " " + ti.name + " weights take " +
                                    std::to_string(bytes) + " bytes, data has " + std::to_string(obj.nbytes()));
    return py::array_t<uint8_t, py::array::c_style>::ensure(obj);
}

const TypeInfo& type_named(const char* op, const std::string& qtype) {
    const TypeInfo* ti = find_type(qtype);
    if (!ti) throw std::invalid_argument(std::string("[") + op + "] unknown quantization type '" + qtype + "'");
    return *ti;
}

template <bool kPack>
py::array_t<uint8_t> repack_py(py::array data, const std::string& qtype, int64_t n, int64_t k, int threads) {
    const char* op = kPack ? "repack_rows8" : "unpack_rows8";
    const TypeInfo& ti = type_named(op, qtype);
    auto in = weight_bytes(op, data, ti, n, k);
    if (threads < 0) throw std::invalid_argument(std::string("[") + op + "] threads must be >= 0");
    const int nthreads = threads == 0 ? default_num_threads() : threads;
    py::array_t<uint8_t> out({n, row_bytes(ti, k)});
    const uint8_t* src = in.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        if (kPack)
            repack_rows8(ti.type, src, dst, n, k, nthreads);
        else
            unpack_rows8(ti.type, src, dst, n, k, nthreads);
    }
    return out;
}

py::array_t<uint8_t> unpack_rows_py(py::array data, const std::string& qtype, int64_t n, int64_t k, py::array ids_obj) {
    const TypeInfo& ti = type_named("unpack_rows8_rows", qtype);
    auto in = weight_bytes("unpack_rows8_rows", data, ti, n, k);
    auto ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(ids_obj);
    if (!ids || ids.ndim() != 1) throw std::invalid_argument("[unpack_rows8_rows] ids must be a 1-D integer array");
    py::array_t<uint8_t> out({static_cast<int64_t>(ids.size()), row_bytes(ti, k)});
    unpack_rows8_rows(ti.type, in.data(), n, k, ids.data(), ids.size(), out.mutable_data());
    return out;
}

// Which ISA's gemm kernel each type would use at the default level.
py::dict matmul_kernels() {
    py::dict out;
    for (int t = 0; t < kTypeCount; ++t) {
        const TypeInfo& ti = type_info(static_cast<QType>(t));
        Isa chosen = Isa::GENERIC;
        if (resolve_gemm(ti.type, default_isa(), &chosen)) out[ti.name] = isa_name(chosen);
    }
    return out;
}

// Which ISA's rows8 kernel each type has at the default level (types without one unpack per call).
py::dict rows8_kernels() {
    py::dict out;
    for (int t = 0; t < kTypeCount; ++t) {
        const TypeInfo& ti = type_info(static_cast<QType>(t));
        Isa chosen = Isa::GENERIC;
        if (resolve_gemm_rows8(ti.type, default_isa(), &chosen)) out[ti.name] = isa_name(chosen);
    }
    return out;
}

}  // namespace

void register_matmul(py::module_& m) {
    m.def("matmul", &matmul_py, py::arg("x"), py::arg("w_data"), py::arg("qtype"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, py::arg("isa") = "", py::arg("layout") = "gguf",
          "y = x @ dequantize(W).T with x quantized to qtype's dot type, as ggml's mul_mat. layout: the "
          "weights' block layout, 'gguf' (row-major) or 'rows8' (rows8.h).");
    m.def("repack_rows8", &repack_py<true>, py::arg("data"), py::arg("qtype"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, "Row-major blocks (n, row_bytes) -> a new uint8 array in the rows8 layout.");
    m.def("unpack_rows8", &repack_py<false>, py::arg("data"), py::arg("qtype"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, "rows8 blocks -> a new uint8 array of row-major rows (n, row_bytes).");
    m.def("unpack_rows8_rows", &unpack_rows_py, py::arg("data"), py::arg("qtype"), py::arg("n"), py::arg("k"),
          py::arg("ids"), "Rows ids of a rows8 matrix as row-major rows (len(ids), row_bytes).");
    m.def("matmul_kernels", &matmul_kernels, "The ISA of the matmul kernel of each type.");
    m.def("rows8_kernels", &rows8_kernels, "The ISA of each type's own kernel on the rows8 layout.");
}
