// The _core extension: numpy in, numpy out. Checks here are the last line of defence; ops.py
// validates first with friendlier messages. std::invalid_argument surfaces as ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/bandwidth.h"
#include "../core/kernels.h"
#include "../core/matmul.h"
#include "../core/quantize_rows.h"
#include "../core/thread_pool.h"
#include "../core/types.h"
#include "../ref/ref.h"

namespace py = pybind11;
using namespace lowbit;

void register_matmul(py::module_& m);  // csrc/python/matmul_bindings.cpp
void register_model_math(py::module_& m);  // csrc/python/model_bindings.cpp
void register_group(py::module_& m);  // csrc/python/group_bindings.cpp

namespace {

const TypeInfo& type_or_throw(const std::string& op, const std::string& name) {
    const TypeInfo* ti = find_type(name);
    if (!ti) throw std::invalid_argument("[" + op + "] unknown quantization type '" + name + "'");
    return *ti;
}

Isa isa_or_default(const std::string& op, const std::string& name) {
    if (name.empty()) return default_isa();
    Isa isa;
    if (!parse_isa(name, &isa)) throw std::invalid_argument("[" + op + "] unknown ISA '" + name + "'");
    if (!isa_supported(isa))
        throw std::invalid_argument("[" + op + "] ISA '" + name + "' is not compiled in or not supported by this CPU");
    return isa;
}

int threads_or_default(const std::string& op, int threads) {
    if (threads == 0) return default_num_threads();  // 0 means "not given"
    if (threads < 0) throw std::invalid_argument("[" + op + "] threads must be >= 1, got " + std::to_string(threads));
    return threads;
}

py::dict type_row(const TypeInfo& ti) {
    py::dict d;
    d["name"] = ti.name;
    d["gguf_id"] = ti.gguf_id;
    d["block_size"] = ti.block_size;
    d["type_size"] = ti.type_size;
    d["dot_type"] = type_info(ti.dot_type).name;
    d["bits_per_weight"] = bits_per_weight(ti);
    d["is_quantized"] = ti.is_quantized;
    d["has_imatrix"] = ti.has_imatrix;
    d["is_activation"] = ti.is_activation;
    return d;
}

// x: (rows, k) f32 C-contiguous; imatrix: (k,) f32 or None -> (rows, row_bytes) uint8
py::array_t<uint8_t> quantize(py::array x_obj, const std::string& type_name, py::object imatrix_obj, int threads,
                              const std::string& isa_name_) {
    const std::string op = "quantize";
    const TypeInfo& ti = type_or_throw(op, type_name);
    const Isa isa = isa_or_default(op, isa_name_);
    const int nthreads = threads_or_default(op, threads);
    if (!py::isinstance<py::array_t<float>>(x_obj) || x_obj.ndim() != 2 || !(x_obj.flags() & py::array::c_style))
        throw std::invalid_argument("[quantize] expected a C-contiguous 2-D float32 array");
    auto x = py::array_t<float, py::array::c_style>::ensure(x_obj);  // a view: dtype and layout already match
    const int64_t rows = x.shape(0), k = x.shape(1);
    if (k % ti.block_size != 0)
        throw std::invalid_argument("[quantize] k=" + std::to_string(k) + " is not a multiple of " + ti.name +
                                    "'s block size " + std::to_string(ti.block_size));
    const float* imatrix = nullptr;
    py::array_t<float, py::array::c_style> im;
    if (!imatrix_obj.is_none()) {
        im = py::array_t<float, py::array::c_style>::ensure(imatrix_obj);
        if (!im || im.ndim() != 1 || im.shape(0) != k)
            throw std::invalid_argument("[quantize] imatrix must be a 1-D float32 array of length k=" + std::to_string(k));
        imatrix = im.data();
    }
    const int64_t rb = row_bytes(ti, k);
    py::array_t<uint8_t> out({rows, rb});
    const float* src = x.data();
    uint8_t* dst = out.mutable_data();
    quantize_row_fn fn = resolve_quantize(ti.type, isa);
    int64_t bad_row;
    {
        py::gil_scoped_release release;
        bad_row = quantize_rows(fn, src, rows, k, dst, rb, imatrix, ti.is_quantized, nthreads);
    }
    if (bad_row >= 0)
        throw std::invalid_argument("[quantize] row " + std::to_string(bad_row) + " contains NaN or inf; " + ti.name +
                                    " needs finite values");
    return out;
}

// data: (rows, row_bytes) uint8 C-contiguous -> (rows, k) f32
// out: None or a C-contiguous (rows, k) float32 array to write into (reused buffers skip page faults)
py::array_t<float> dequantize(py::array data_obj, const std::string& type_name, int64_t k, int threads,
                              const std::string& isa_name_, py::object out_obj) {
    const std::string op = "dequantize";
    const TypeInfo& ti = type_or_throw(op, type_name);
    const Isa isa = isa_or_default(op, isa_name_);
    const int nthreads = threads_or_default(op, threads);
    if (!py::isinstance<py::array_t<uint8_t>>(data_obj) || data_obj.ndim() != 2 ||
        !(data_obj.flags() & py::array::c_style))
        throw std::invalid_argument("[dequantize] expected a C-contiguous 2-D uint8 array");
    auto data = py::array_t<uint8_t, py::array::c_style>::ensure(data_obj);
    if (k <= 0 || k % ti.block_size != 0)
        throw std::invalid_argument("[dequantize] k=" + std::to_string(k) + " is not a positive multiple of " +
                                    ti.name + "'s block size " + std::to_string(ti.block_size));
    const int64_t rows = data.shape(0), rb = row_bytes(ti, k);
    if (data.shape(1) != rb)
        throw std::invalid_argument("[dequantize] rows of " + std::to_string(k) + " " + ti.name + " weights take " +
                                    std::to_string(rb) + " bytes, got " + std::to_string(data.shape(1)));
    py::array_t<float> out;
    if (out_obj.is_none()) {
        out = py::array_t<float>({rows, k});
    } else {
        py::array o = py::cast<py::array>(out_obj);
        if (!py::isinstance<py::array_t<float>>(o) || o.ndim() != 2 || o.shape(0) != rows || o.shape(1) != k ||
            !(o.flags() & py::array::c_style) || !o.writeable())
            throw std::invalid_argument("[dequantize] out must be a writeable C-contiguous float32 array of shape (" +
                                        std::to_string(rows) + ", " + std::to_string(k) + ")");
        out = py::array_t<float>::ensure(o);
    }
    const uint8_t* src = data.data();
    float* dst = out.mutable_data();
    dequantize_row_fn fn = resolve_dequantize(ti.type, isa);
    {
        py::gil_scoped_release release;
        ThreadPool::global().parallel_for(rows, nthreads, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) fn(src + r * rb, dst + r * k, k);
        });
    }
    return out;
}

py::dict cpu_info() {
    py::dict info;
    const Isa best = default_isa();
    info["isa"] = isa_name(best);
    py::list compiled, supported;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        if (isa_compiled(isa)) compiled.append(isa_name(isa));
        if (isa_supported(isa)) supported.append(isa_name(isa));
    }
    info["compiled"] = compiled;
    info["supported"] = supported;
    info["threads"] = default_num_threads();
    py::dict kernels;
    for (int t = 0; t < kTypeCount; ++t) {
        const TypeInfo& ti = type_info(static_cast<QType>(t));
        Isa q = Isa::GENERIC, d = Isa::GENERIC;
        resolve_quantize(ti.type, best, &q);
        resolve_dequantize(ti.type, best, &d);
        py::dict row;
        row["quantize"] = isa_name(q);
        row["dequantize"] = isa_name(d);
        kernels[ti.name] = row;
    }
    info["kernels"] = kernels;
    return info;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "lowbit's C++ core: the type table and the quantization kernels";
    m.def("types", [] {
        py::list rows;
        for (int t = 0; t < kTypeCount; ++t) rows.append(type_row(type_info(static_cast<QType>(t))));
        return rows;
    }, "The quantization type table, one dict per type.");
    m.def("quantize", &quantize, py::arg("x"), py::arg("qtype"), py::arg("imatrix") = py::none(),
          py::arg("threads") = 0, py::arg("isa") = "");
    m.def("dequantize", &dequantize, py::arg("data"), py::arg("qtype"), py::arg("k"), py::arg("threads") = 0,
          py::arg("isa") = "", py::arg("out") = py::none());
    m.def("quantize_activations", [](py::array x_obj, const std::string& type_name, const std::string& isa_name,
                                     bool with_ds) -> py::object {
        // x: (rows, k) f32 -> (rows, row_bytes): lowbit.matmul's activation quantization (tests compare
        // it with ggml's CPU from_float).
        const TypeInfo& ti = type_or_throw("quantize_activations", type_name);
        if (ti.type != QType::Q8_0 && ti.type != QType::Q8_1)
            throw std::invalid_argument("[quantize_activations] only q8_0 and q8_1 have a separate activation rounding");
        if (!py::isinstance<py::array_t<float>>(x_obj) || x_obj.ndim() != 2 || !(x_obj.flags() & py::array::c_style))
            throw std::invalid_argument("[quantize_activations] expected a C-contiguous 2-D float32 array");
        auto x = py::array_t<float, py::array::c_style>::ensure(x_obj);
        const int64_t rows = x.shape(0), k = x.shape(1);
        if (k % 32) throw std::invalid_argument("[quantize_activations] k must be a multiple of 32");
        const int64_t rb = row_bytes(ti, k);
        py::array_t<uint8_t> out({rows, rb});
        // isa: "generic" is the reference; a SIMD ISA runs matmul's fused kernel (levels and a_ds pairs),
        // whose bytes tests compare with the reference's.
        Isa isa = Isa::GENERIC;
        if (!parse_isa(isa_name, &isa) || !isa_supported(isa))
            throw std::invalid_argument("[quantize_activations] unknown or unsupported isa '" + isa_name + "'");
        const quantize_act_fn fused = resolve_quantize_act(ti.type, isa);
        auto fn = ti.type == QType::Q8_0 ? ref::quantize_act_row_q8_0 : ref::quantize_act_row_q8_1;
        py::array_t<float> ds({rows, k / 32 * 2});
        for (int64_t r = 0; r < rows; ++r) {
            if (!row_is_finite(x.data() + r * k, k))
                throw std::invalid_argument("[quantize_activations] row " + std::to_string(r) + " has NaN or inf");
            uint8_t* y = out.mutable_data() + r * rb;
            float* ds_r = ds.mutable_data() + r * (k / 32 * 2);
            if (fused) {
                if (!fused(x.data() + r * k, y, ds_r, k))
                    throw std::logic_error("[quantize_activations] the fused kernel reported a finite row as bad");
            } else {
                fn(x.data() + r * k, y, k, nullptr);
                act_scales_and_sums(ti.type, y, k, ds_r);
            }
        }
        if (with_ds) return py::make_tuple(out, ds);
        return std::move(out);
    }, py::arg("x"), py::arg("qtype"), py::arg("isa") = "generic", py::arg("with_ds") = false,
       "(rows, row_bytes) levels, and with with_ds the (rows, k/32 * 2) a_ds pairs matmul's kernels read.");
    m.def("cpu_info", &cpu_info);
    m.def("default_num_threads", &default_num_threads);
    m.def("read_bandwidth", [](int64_t nbytes, int threads, int repeats) {
        if (nbytes <= 0 || repeats <= 0) throw std::invalid_argument("[read_bandwidth] nbytes and repeats must be > 0");
        const int nt = threads_or_default("read_bandwidth", threads);
        py::gil_scoped_release release;
        return read_bandwidth_gbps(static_cast<size_t>(nbytes), nt, repeats);
    }, py::arg("nbytes") = int64_t(1) << 30, py::arg("threads") = 0, py::arg("repeats") = 5,
       "GB/s of a STREAM-like multi-threaded read of an nbytes buffer (the GEMV roofline).");
    register_matmul(m);
    register_model_math(m);
    register_group(m);
}
