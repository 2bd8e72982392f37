// _core.matmul: the numpy boundary of csrc/core/matmul.h. Checks every argument (shape, dtype,
// layout, sizes) before any pointer is read; the GIL is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "../core/kernels.h"
#include "../core/matmul.h"
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
                             int threads, const std::string& isa_name_) {
    const TypeInfo* ti = find_type(qtype);
    if (!ti) fail("unknown quantization type '" + qtype + "'");
    const Isa isa = isa_or_default(isa_name_);
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
        matmul(xp, m, k, wp, n, ti->type, yp, nthreads, isa);
    }
    return y;
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

}  // namespace

void register_matmul(py::module_& m) {
    m.def("matmul", &matmul_py, py::arg("x"), py::arg("w_data"), py::arg("qtype"), py::arg("n"), py::arg("k"),
          py::arg("threads") = 0, py::arg("isa") = "",
          "y = x @ dequantize(W).T with x quantized to qtype's dot type, as ggml's mul_mat.");
    m.def("matmul_kernels", &matmul_kernels, "The ISA of the matmul kernel of each type.");
}
