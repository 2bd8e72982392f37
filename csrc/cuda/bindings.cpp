// The _cuda extension: device buffers, DLPack in and out, and the kernel launches. Python (lowbit/cuda.py)
// validates first with friendlier messages; checks here are the last line of defence. Every CUDA
// error becomes a Python exception: out of memory -> lowbit._cuda.CudaOutOfMemory (a MemoryError),
// anything else -> RuntimeError naming the operation. Nothing here aborts.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/types.h"
#include "dlpack.h"
#include "kernels.h"

#ifndef LOWBIT_CUDA_ARCHS
#define LOWBIT_CUDA_ARCHS ""
#endif

namespace py = pybind11;
using namespace lowbit;
using namespace lowbit::cuda;

namespace {

struct DeviceOutOfMemory : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(cudaError_t err, const std::string& op) {
    if (err == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    if (err == cudaErrorMemoryAllocation)
        throw DeviceOutOfMemory("[" + op + "] CUDA out of memory: " + cudaGetErrorString(err));
    throw std::runtime_error("[" + op + "] CUDA error " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

// Makes `device` current for the scope; kernels, allocations and copies run on the current device.
struct DeviceScope {
    int previous = -1;
    DeviceScope(int device, const std::string& op) {
        check(cudaGetDevice(&previous), op);
        if (previous != device) check(cudaSetDevice(device), op);
    }
    ~DeviceScope() {
        int now = -1;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous && previous >= 0) cudaSetDevice(previous);
    }
};

cudaStream_t as_stream(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// Owned device memory, freed when the Python object is collected. cudaFree waits for the device, so
// a buffer a kernel still reads (on any stream) is never released under it.
class DeviceBuffer {
  public:
    DeviceBuffer(int64_t nbytes, int device) : nbytes_(nbytes), device_(device) {
        if (nbytes < 0) throw std::invalid_argument("[DeviceBuffer] nbytes must be >= 0");
        DeviceScope scope(device, "DeviceBuffer");
        if (nbytes > 0) check(cudaMalloc(&ptr_, size_t(nbytes)), "DeviceBuffer");
    }
    ~DeviceBuffer() {
        if (ptr_) {
            int previous = -1;
            cudaGetDevice(&previous);
            cudaSetDevice(device_);
            cudaFree(ptr_);
            if (previous >= 0) cudaSetDevice(previous);
        }
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(ptr_); }
    int64_t nbytes() const { return nbytes_; }
    int device() const { return device_; }

  private:
    void* ptr_ = nullptr;
    int64_t nbytes_;
    int device_;
};

// host -> device: copies all bytes of a C-contiguous array into buf (offset 0); synchronous.
void upload(DeviceBuffer& buf, py::array host, uintptr_t stream) {
    if (!(host.flags() & py::array::c_style)) throw std::invalid_argument("[upload] array must be C-contiguous");
    if (host.nbytes() != buf.nbytes())
        throw std::invalid_argument("[upload] array has " + std::to_string(host.nbytes()) + " bytes, buffer " +
                                    std::to_string(buf.nbytes()));
    DeviceScope scope(buf.device(), "upload");
    const void* src = host.data();
    py::gil_scoped_release release;
    check(cudaMemcpyAsync(reinterpret_cast<void*>(buf.ptr()), src, size_t(buf.nbytes()), cudaMemcpyHostToDevice,
                          as_stream(stream)),
          "upload");
    check(cudaStreamSynchronize(as_stream(stream)), "upload");
}

// device -> host: copies nbytes from ptr (device memory of `device`) into a writable C-contiguous array.
void download(uintptr_t ptr, int device, py::array host, uintptr_t stream) {
    if (!(host.flags() & py::array::c_style) || !host.writeable())
        throw std::invalid_argument("[download] array must be writable and C-contiguous");
    DeviceScope scope(device, "download");
    void* dst = host.mutable_data();
    const size_t nbytes = size_t(host.nbytes());
    py::gil_scoped_release release;
    check(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(ptr), nbytes, cudaMemcpyDeviceToHost, as_stream(stream)),
          "download");
    check(cudaStreamSynchronize(as_stream(stream)), "download");
}

const TypeInfo& type_or_throw(const std::string& op, const std::string& name) {
    const TypeInfo* ti = find_type(name);
    if (!ti) throw std::invalid_argument("[" + op + "] unknown quantization type '" + name + "'");
    return *ti;
}

// layout: "gguf" (the file's bytes) or "tile8" (tiled.cuh; q4_0 / q4_1 / q8_0 with k % 256 == 0)
const FormatKernels& kernels_or_throw(const std::string& op, const TypeInfo& ti, const std::string& layout = "gguf") {
    const FormatKernels* fk = nullptr;
    if (layout == "gguf") fk = format_kernels(ti.type);
    else if (layout == "tile8") fk = format_kernels_tile8(ti.type);
    else throw std::invalid_argument("[" + op + "] unknown layout '" + layout + "' (expected gguf or tile8)");
    if (!fk)
        throw std::invalid_argument("[" + op + "] no CUDA kernels for type '" + std::string(ti.name) + "' in layout " +
                                    layout);
    return *fk;
}

// GGUF rows -> tile8 rows (pack) or back: data (n, row_bytes) uint8 -> the same shape.
py::array_t<uint8_t> tile8_permute(const std::string& qtype, py::array_t<uint8_t, py::array::c_style> data, int64_t k,
                                   bool pack) {
    const std::string op = pack ? "tile8_pack" : "tile8_unpack";
    const TypeInfo& ti = type_or_throw(op, qtype);
    if (k < 1 || k % kTileWeights)
        throw std::invalid_argument("[" + op + "] k must be a positive multiple of " + std::to_string(kTileWeights));
    if (data.ndim() != 2 || data.shape(1) != row_bytes(ti, k))
        throw std::invalid_argument("[" + op + "] data must be (rows, " + std::to_string(row_bytes(ti, k)) + ") uint8");
    py::array_t<uint8_t> out({data.shape(0), data.shape(1)});
    const bool ok = pack ? tile8_pack(ti.type, data.data(), out.mutable_data(), data.shape(0), k)
                         : tile8_unpack(ti.type, data.data(), out.mutable_data(), data.shape(0), k);
    if (!ok) throw std::invalid_argument("[" + op + "] type '" + std::string(ti.name) + "' has no tile8 layout");
    return out;
}

// w: (rows, row_bytes) on device -> y: (rows, k) f32 at y_ptr (same device)
void dequantize(const DeviceBuffer& w, const std::string& qtype, int64_t rows, int64_t k, uintptr_t y_ptr,
                uintptr_t stream, const std::string& layout) {
    const std::string op = "dequantize";
    const TypeInfo& ti = type_or_throw(op, qtype);
    const FormatKernels& fk = kernels_or_throw(op, ti, layout);
    if (rows < 0 || k < 1 || k % ti.block_size) throw std::invalid_argument("[dequantize] bad shape");
    if (rows * row_bytes(ti, k) != w.nbytes())
        throw std::invalid_argument("[dequantize] weight buffer has " + std::to_string(w.nbytes()) + " bytes, expected " +
                                    std::to_string(rows * row_bytes(ti, k)));
    DeviceScope scope(w.device(), op);
    check(fk.dequantize(reinterpret_cast<const uint8_t*>(w.ptr()), row_bytes(ti, k), reinterpret_cast<float*>(y_ptr),
                        rows, k, as_stream(stream)),
          op);
}

// y (m, n) = x (m, k) @ W(n, k)^T, everything on w's device, enqueued on `stream`.
// x: f32 row-major (m, k) at x_ptr; y: f32 (m, n) at y_ptr. The kernels want x 16-byte aligned
// with a row pitch that is a multiple of 16 floats; other inputs are staged into such a copy.
// kernel: "auto" (GEMV up to the format's gemv_max_rows: the integer one, m <= 32, where the format has
// it, else fp32, m <= 8; GEMM above), or "gemv_f32",
// "gemv", "gemm" to force one (tests and benchmarks compare them), or "mma" (the int8 tensor-core
// kernel, m <= 32, q4_0 / q4_1 / q8_0; "mma_async": the same fed by cp.async) or "gemv_async" (the integer GEMV fed by cp.async, m <= 8;
// q4_0 / q4_1 / q8_0 / q4_K / q5_K): neither is chosen by "auto" until measured faster.
void matmul(const DeviceBuffer& w, const std::string& qtype, int64_t n, int64_t k, uintptr_t x_ptr, int64_t m,
            uintptr_t y_ptr, uintptr_t stream_handle, const std::string& kernel, const std::string& layout) {
    const std::string op = "matmul";
    const TypeInfo& ti = type_or_throw(op, qtype);
    const FormatKernels& fk = kernels_or_throw(op, ti, layout);
    if (m < 1 || n < 1 || k < 1 || k % ti.block_size) throw std::invalid_argument("[matmul] bad shape");
    const int64_t rb = row_bytes(ti, k);
    if (n * rb != w.nbytes())
        throw std::invalid_argument("[matmul] weight buffer has " + std::to_string(w.nbytes()) + " bytes, expected " +
                                    std::to_string(n * rb));
    MatmulFn fn = m <= fk.gemv_max_rows ? fk.gemv : fk.gemm;
    // The int8 tensor-core GEMV reads each weight once for all rows: on an H100 (2026-11-27) it beat the
    // dp4a GEMV from m = 16 (q4_0 28672x4096: 102 vs 155 us) but lost at m <= 4, so it takes m = 9..32.
    if (fk.gemv_mma_async && m > 8 && m <= kGemvMmaMaxRows) fn = fk.gemv_mma_async;
    // gemv_stream where measured fastest (tile8, m = 1); falls back to fk.gemv where x does not fit
    const bool auto_stream = kernel == "auto" && fk.gemv_stream && m <= fk.gemv_stream_auto_rows;
    if (auto_stream) fn = fk.gemv_stream;
    if (kernel == "gemv_f32") fn = fk.gemv_f32;
    else if (kernel == "gemv") fn = fk.gemv;
    else if (kernel == "gemv_unstaged") fn = fk.gemv_unstaged;
    else if (kernel == "gemm") fn = fk.gemm;
    else if (kernel == "mma") fn = fk.gemv_mma;
    else if (kernel == "mma_async") fn = fk.gemv_mma_async;
    else if (kernel == "gemv_async") fn = fk.gemv_async;
    else if (kernel == "gemv_stream") fn = fk.gemv_stream;
    else if (kernel != "auto") throw std::invalid_argument("[matmul] unknown kernel '" + kernel + "'");
    if (!fn) throw std::invalid_argument("[matmul] no kernel '" + kernel + "' for " + std::string(ti.name));
    const int64_t max_rows = fn == fk.gemv || fn == fk.gemv_unstaged ? fk.gemv_max_rows
                             : fn == fk.gemv_mma || fn == fk.gemv_mma_async ? kGemvMmaMaxRows
                             : fn == fk.gemv_async                   ? kGemvAsyncMaxRows
                             : fn == fk.gemv_stream                  ? kGemvStreamMaxRows
                                                                     : kGemvMaxRows;
    if (fn != fk.gemm && m > max_rows)
        throw std::invalid_argument("[matmul] this GEMV kernel takes m <= " + std::to_string(max_rows) + " rows");
    DeviceScope scope(w.device(), op);
    const cudaStream_t stream = as_stream(stream_handle);
    const float* x = reinterpret_cast<const float*>(x_ptr);
    int64_t ldx = k;
    void* staged = nullptr;
    if (x_ptr % 16 != 0 || k % 16 != 0) {
        ldx = (k + 15) / 16 * 16;
        const size_t bytes = size_t(m * ldx) * sizeof(float);
        check(cudaMallocAsync(&staged, bytes, stream), op);  // stream-ordered: freed below on the same stream
        cudaError_t err = cudaMemsetAsync(staged, 0, bytes, stream);
        if (err == cudaSuccess)
            err = cudaMemcpy2DAsync(staged, size_t(ldx) * sizeof(float), x, size_t(k) * sizeof(float),
                                    size_t(k) * sizeof(float), size_t(m), cudaMemcpyDeviceToDevice, stream);
        if (err != cudaSuccess) {
            cudaFreeAsync(staged, stream);
            check(err, op);
        }
        x = static_cast<const float*>(staged);
    }
    cudaError_t err = fn(reinterpret_cast<const uint8_t*>(w.ptr()), rb, x, ldx, reinterpret_cast<float*>(y_ptr), m, n,
                         k, stream);
    if (err == cudaErrorNotSupported && auto_stream)  // x too large for gemv_stream's shared memory
        err = fk.gemv(reinterpret_cast<const uint8_t*>(w.ptr()), rb, x, ldx, reinterpret_cast<float*>(y_ptr), m, n, k,
                      stream);
    if (staged) cudaFreeAsync(staged, stream);
    check(err, op);
}

// ---- DLPack ----

// What a consumer needs from a DLPack capsule; the capsule itself stays alive on the Python side.
py::dict dlpack_view(py::capsule capsule) {
    const char* name = capsule.name();
    const dlpack::DLTensor* t = nullptr;
    if (name && std::strcmp(name, "dltensor") == 0)
        t = &static_cast<dlpack::DLManagedTensor*>(capsule.get_pointer())->dl_tensor;
    else if (name && std::strcmp(name, "dltensor_versioned") == 0)
        t = &static_cast<dlpack::DLManagedTensorVersioned*>(capsule.get_pointer())->dl_tensor;
    else
        throw std::invalid_argument("[matmul] expected a DLPack capsule ('dltensor'), got '" +
                                    std::string(name ? name : "") + "' (already consumed?)");
    py::dict d;
    d["ptr"] = reinterpret_cast<uintptr_t>(t->data) + t->byte_offset;
    d["device_type"] = t->device.device_type;
    d["device_id"] = t->device.device_id;
    d["dtype_code"] = int(t->dtype.code);
    d["dtype_bits"] = int(t->dtype.bits);
    d["dtype_lanes"] = int(t->dtype.lanes);
    py::list shape, strides;
    for (int i = 0; i < t->ndim; ++i) shape.append(t->shape[i]);
    if (t->strides)
        for (int i = 0; i < t->ndim; ++i) strides.append(t->strides[i]);
    d["shape"] = py::tuple(shape);
    d["strides"] = t->strides ? py::object(py::tuple(strides)) : py::object(py::none());
    return d;
}

struct ExportContext {
    py::object owner;  // keeps the device memory alive while the consumer holds the tensor
    std::vector<int64_t> shape, strides;
};

template <class Managed>
void export_deleter(Managed* self) {
    if (!self) return;
    py::gil_scoped_acquire gil;  // consumers may call the deleter from any thread
    delete static_cast<ExportContext*>(self->manager_ctx);
    delete self;
}

template <class Managed>
void fill_export(Managed* mt, ExportContext* ctx, uintptr_t ptr, int device) {
    mt->dl_tensor.data = reinterpret_cast<void*>(ptr);
    mt->dl_tensor.device = {dlpack::kDLCUDA, device};
    mt->dl_tensor.ndim = int32_t(ctx->shape.size());
    mt->dl_tensor.dtype = {dlpack::kDLFloat, 32, 1};
    mt->dl_tensor.shape = ctx->shape.data();
    mt->dl_tensor.strides = ctx->strides.data();
    mt->dl_tensor.byte_offset = 0;
    mt->manager_ctx = ctx;
    mt->deleter = export_deleter<Managed>;
}

// An unconsumed capsule frees the tensor itself; a consumer renames it "used_..." and calls the
// deleter when done with the memory.
template <class Managed>
void export_capsule_destructor(PyObject* cap, const char* name) {
    if (PyCapsule_IsValid(cap, name)) {
        auto* t = static_cast<Managed*>(PyCapsule_GetPointer(cap, name));
        if (t && t->deleter) t->deleter(t);
    } else {
        PyErr_Clear();
    }
}

// A DLPack capsule of a row-major f32 array at ptr (device memory owned by `owner`): "dltensor_versioned"
// (DLPack 1.0) when the consumer asked for it with max_version >= (1, 0), else the legacy "dltensor".
py::capsule dlpack_export(py::object owner, uintptr_t ptr, int device, std::vector<int64_t> shape, bool versioned) {
    auto* ctx = new ExportContext{owner, shape, std::vector<int64_t>(shape.size())};
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        ctx->strides[i] = stride;
        stride *= shape[i];
    }
    if (versioned) {
        auto* mt = new dlpack::DLManagedTensorVersioned{};
        mt->version = {1, 0};
        mt->flags = 0;
        fill_export(mt, ctx, ptr, device);
        return py::capsule(mt, "dltensor_versioned", [](PyObject* cap) {
            export_capsule_destructor<dlpack::DLManagedTensorVersioned>(cap, "dltensor_versioned");
        });
    }
    auto* mt = new dlpack::DLManagedTensor{};
    fill_export(mt, ctx, ptr, device);
    return py::capsule(mt, "dltensor", [](PyObject* cap) {
        export_capsule_destructor<dlpack::DLManagedTensor>(cap, "dltensor");
    });
}

// Make `consumer` wait for the work enqueued so far on `producer` (no host synchronisation).
void stream_wait(int device, uintptr_t producer, uintptr_t consumer) {
    if (producer == consumer) return;
    DeviceScope scope(device, "stream_wait");
    cudaEvent_t ev;
    check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "stream_wait");
    cudaError_t err = cudaEventRecord(ev, as_stream(producer));
    if (err == cudaSuccess) err = cudaStreamWaitEvent(as_stream(consumer), ev, 0);
    cudaEventDestroy(ev);
    check(err, "stream_wait");
}

void synchronize(int device, uintptr_t stream) {
    DeviceScope scope(device, "synchronize");
    py::gil_scoped_release release;
    check(cudaStreamSynchronize(as_stream(stream)), "synchronize");
}

// ---- devices ----

// Usable devices: 0 without a driver or a GPU (the error is reported by device_error()).
int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

std::string device_error() {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    cudaGetLastError();
    if (err != cudaSuccess) return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return count == 0 ? "no CUDA device found" : "";
}

py::dict device_info(int device) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "device_info");
    py::dict d;
    d["name"] = std::string(prop.name);
    d["compute_capability"] = py::make_tuple(prop.major, prop.minor);
    d["total_memory"] = int64_t(prop.totalGlobalMem);
    d["multiprocessors"] = prop.multiProcessorCount;
    d["l2_bytes"] = prop.l2CacheSize;
    d["memory_bus_bits"] = prop.memoryBusWidth;
    return d;
}

py::tuple memory_info(int device) {
    DeviceScope scope(device, "memory_info");
    size_t free_bytes = 0, total = 0;
    check(cudaMemGetInfo(&free_bytes, &total), "memory_info");
    return py::make_tuple(int64_t(free_bytes), int64_t(total));
}

// ---- GPTQ / AWQ 4-bit group weights (group_int4.cu); lowbit/cuda.py validates the layout first ----

GroupInt4Device group_view(const std::string& op, const DeviceBuffer& codes, const DeviceBuffer& params,
                           const DeviceBuffer& unit_group, const DeviceBuffer& xsrc, int64_t n, int64_t k, int64_t kp,
                           int64_t groups, int64_t units_per_group) {
    if (n < 1 || k < 1 || kp < 32 || kp % 32 || groups < 1 || units_per_group < 0 ||
        (units_per_group > 0 && (kp / 32 + units_per_group - 1) / units_per_group != groups))
        throw std::invalid_argument("[" + op + "] bad group shape");
    if (codes.nbytes() != n * kp / 2 || params.nbytes() != n * groups * 8 || unit_group.nbytes() != kp / 32 * 4 ||
        xsrc.nbytes() != kp * 4)
        throw std::invalid_argument("[" + op + "] group buffers do not match the shape");
    const int dev = codes.device();
    if (params.device() != dev || unit_group.device() != dev || xsrc.device() != dev)
        throw std::invalid_argument("[" + op + "] group buffers on different devices");
    return GroupInt4Device{reinterpret_cast<const uint8_t*>(codes.ptr()), kp / 2,
                           reinterpret_cast<const float2*>(params.ptr()), groups, units_per_group,
                           reinterpret_cast<const int32_t*>(unit_group.ptr()), reinterpret_cast<const int32_t*>(xsrc.ptr()),
                           n, k, kp};
}

void group_matmul(const DeviceBuffer& codes, const DeviceBuffer& params, const DeviceBuffer& unit_group,
                  const DeviceBuffer& xsrc, int64_t n, int64_t k, int64_t kp, int64_t groups, int64_t units_per_group,
                  uintptr_t x_ptr, int64_t m, uintptr_t y_ptr, uintptr_t stream) {
    const std::string op = "matmul";
    const GroupInt4Device w = group_view(op, codes, params, unit_group, xsrc, n, k, kp, groups, units_per_group);
    if (m < 1) throw std::invalid_argument("[matmul] m must be >= 1");
    DeviceScope scope(codes.device(), op);
    check(group_int4_matmul(w, reinterpret_cast<const float*>(x_ptr), k, reinterpret_cast<float*>(y_ptr), m,
                            as_stream(stream)),
          op);
}

void group_dequantize(const DeviceBuffer& codes, const DeviceBuffer& params, const DeviceBuffer& unit_group,
                      const DeviceBuffer& xsrc, int64_t n, int64_t k, int64_t kp, int64_t groups,
                      int64_t units_per_group, uintptr_t y_ptr, uintptr_t stream) {
    const std::string op = "dequantize";
    const GroupInt4Device w = group_view(op, codes, params, unit_group, xsrc, n, k, kp, groups, units_per_group);
    DeviceScope scope(codes.device(), op);
    check(group_int4_dequantize(w, reinterpret_cast<float*>(y_ptr), as_stream(stream)), op);
}

// The group GEMV's numerics on the host (tests without a GPU). x: (m, k) -> (m, n)
py::array_t<float> group_gemv_host(py::array_t<uint8_t, py::array::c_style> codes,
                                   py::array_t<float, py::array::c_style> params,
                                   py::array_t<int32_t, py::array::c_style> unit_group,
                                   py::array_t<int32_t, py::array::c_style> xsrc, int64_t k,
                                   py::array_t<float, py::array::c_style> x, int64_t units_per_group) {
    const int64_t n = codes.ndim() == 2 ? codes.shape(0) : 0, kp = xsrc.size();
    const int64_t groups = params.ndim() == 3 ? params.shape(1) : 0;
    if (n < 1 || kp % 32 || codes.shape(1) != kp / 2 || params.ndim() != 3 || params.shape(0) != n ||
        params.shape(2) != 2 || unit_group.size() != kp / 32 || x.ndim() != 2 || x.shape(1) != k)
        throw std::invalid_argument("[group_gemv_host] bad shapes");
    for (int64_t u = 0; u < kp / 32; ++u)
        if (unit_group.data()[u] < 0 || unit_group.data()[u] >= groups ||
            (units_per_group > 0 && unit_group.data()[u] != u / units_per_group))
            throw std::invalid_argument("[group_gemv_host] unit_group out of range or not uniform");
    for (int64_t c = 0; c < kp; ++c)
        if (xsrc.data()[c] < -1 || xsrc.data()[c] >= k) throw std::invalid_argument("[group_gemv_host] xsrc out of range");
    const GroupInt4Device w{codes.data(), kp / 2, reinterpret_cast<const float2*>(params.data()), groups,
                            units_per_group, unit_group.data(), xsrc.data(), n, k, kp};
    const int64_t m = x.shape(0);
    py::array_t<float> y({m, n});
    group_int4_gemv_host(w, x.data(), y.mutable_data(), m);
    return y;
}

// ---- benchmark helpers: kernel time alone, measured with CUDA events (no Python in the loop) ----

// Times `iters` launches cycling through `weights` (copies of one matrix: together larger than L2,
// so each launch streams its weights from DRAM as in a real model). Milliseconds per launch.
// Milliseconds per launch of launch(i, stream) for i < iters, captured into a CUDA graph and replayed: the
// device alone, no host launch cost between kernels (what a model's captured decode step pays).
template <class Launch>
double time_graph(const std::string& op, int iters, Launch launch) {
    cudaStream_t s;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), op);
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    float ms = 0.f;
    const int replays = 5;
    cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
    if (err == cudaSuccess) {
        try {
            for (int i = 0; i < iters; ++i) launch(i, reinterpret_cast<uintptr_t>(s));
        } catch (...) {
            cudaStreamEndCapture(s, &g);
            if (g) cudaGraphDestroy(g);
            cudaStreamDestroy(s);
            throw;
        }
        err = cudaStreamEndCapture(s, &g);
    }
    if (err == cudaSuccess) err = cudaGraphInstantiate(&exec, g, 0);
    if (err == cudaSuccess) err = cudaGraphLaunch(exec, s);  // warm-up replay
    if (err == cudaSuccess) err = cudaEventCreate(&start);
    if (err == cudaSuccess) err = cudaEventCreate(&stop);
    if (err == cudaSuccess) err = cudaEventRecord(start, s);
    for (int r = 0; r < replays && err == cudaSuccess; ++r) err = cudaGraphLaunch(exec, s);
    if (err == cudaSuccess) err = cudaEventRecord(stop, s);
    if (err == cudaSuccess) {
        py::gil_scoped_release release;
        err = cudaEventSynchronize(stop);
    }
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (exec) cudaGraphExecDestroy(exec);
    if (g) cudaGraphDestroy(g);
    cudaStreamDestroy(s);
    check(err, op);
    return double(ms) / (double(iters) * replays);
}

// graph: time graph replays of the launches (time_graph) instead of a stream of host launches.
double bench_matmul(py::list weights, const std::string& qtype, int64_t n, int64_t k, uintptr_t x_ptr, int64_t m,
                    uintptr_t y_ptr, int iters, uintptr_t stream, const std::string& kernel, const std::string& layout,
                    bool graph) {
    if (iters < 1 || weights.empty()) throw std::invalid_argument("[bench_matmul] need iters >= 1 and a weight");
    std::vector<const DeviceBuffer*> ws;
    for (py::handle h : weights) ws.push_back(&h.cast<const DeviceBuffer&>());
    for (const DeviceBuffer* w : ws) matmul(*w, qtype, n, k, x_ptr, m, y_ptr, stream, kernel, layout);  // warm-up
    DeviceScope scope(ws[0]->device(), "bench_matmul");
    if (graph)
        return time_graph("bench_matmul", iters, [&](int i, uintptr_t s) {
            matmul(*ws[size_t(i) % ws.size()], qtype, n, k, x_ptr, m, y_ptr, s, kernel, layout);
        });
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "bench_matmul");
    check(cudaEventCreate(&stop), "bench_matmul");
    check(cudaEventRecord(start, as_stream(stream)), "bench_matmul");
    for (int i = 0; i < iters; ++i)
        matmul(*ws[size_t(i) % ws.size()], qtype, n, k, x_ptr, m, y_ptr, stream, kernel, layout);
    check(cudaEventRecord(stop, as_stream(stream)), "bench_matmul");
    float ms = 0.f;
    {
        py::gil_scoped_release release;
        check(cudaEventSynchronize(stop), "bench_matmul");
    }
    check(cudaEventElapsedTime(&ms, start, stop), "bench_matmul");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return double(ms) / iters;
}

// The group GEMV timed like bench_matmul(graph=True); weights: tuples (codes, params, unit_group, xsrc).
double bench_group_matmul(py::list weights, int64_t n, int64_t k, int64_t kp, int64_t groups, int64_t units_per_group,
                          uintptr_t x_ptr, int64_t m, uintptr_t y_ptr, int iters) {
    if (iters < 1 || weights.empty()) throw std::invalid_argument("[bench_group_matmul] need iters >= 1 and a weight");
    std::vector<py::tuple> ws;
    for (py::handle h : weights) ws.push_back(h.cast<py::tuple>());
    auto run = [&](size_t i, uintptr_t s) {
        const py::tuple& t = ws[i % ws.size()];
        group_matmul(t[0].cast<const DeviceBuffer&>(), t[1].cast<const DeviceBuffer&>(), t[2].cast<const DeviceBuffer&>(),
                     t[3].cast<const DeviceBuffer&>(), n, k, kp, groups, units_per_group, x_ptr, m, y_ptr, s);
    };
    for (size_t i = 0; i < ws.size(); ++i) run(i, 0);  // warm-up, validates
    DeviceScope scope(ws[0][0].cast<const DeviceBuffer&>().device(), "bench_group_matmul");
    return time_graph("bench_group_matmul", iters, [&](int i, uintptr_t s) { run(size_t(i), s); });
}

// Device-to-device cudaMemcpy of nbytes; returns milliseconds per copy.
double bench_copy(int device, int64_t nbytes, int iters) {
    DeviceBuffer a(nbytes, device), b(nbytes, device);
    DeviceScope scope(device, "bench_copy");
    void* src = reinterpret_cast<void*>(a.ptr());
    void* dst = reinterpret_cast<void*>(b.ptr());
    check(cudaMemset(src, 1, size_t(nbytes)), "bench_copy");
    check(cudaMemcpy(dst, src, size_t(nbytes), cudaMemcpyDeviceToDevice), "bench_copy");
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "bench_copy");
    check(cudaEventCreate(&stop), "bench_copy");
    check(cudaEventRecord(start, 0), "bench_copy");
    for (int i = 0; i < iters; ++i) check(cudaMemcpyAsync(dst, src, size_t(nbytes), cudaMemcpyDeviceToDevice, 0), "bench_copy");
    check(cudaEventRecord(stop, 0), "bench_copy");
    check(cudaEventSynchronize(stop), "bench_copy");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start, stop), "bench_copy");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return double(ms) / iters;
}

// The decoders' host build over rows of GGUF bytes: lets tests without a GPU check them.
// data: (rows, row_bytes) uint8 C-contiguous -> (rows, k) f32
py::array_t<float> decode_host(const std::string& qtype, py::array_t<uint8_t, py::array::c_style> data, int64_t k,
                               const std::string& layout) {
    const std::string op = "decode_host";
    const TypeInfo& ti = type_or_throw(op, qtype);
    const FormatKernels& fk = kernels_or_throw(op, ti, layout);
    if (k < 1 || k % ti.block_size) throw std::invalid_argument("[decode_host] bad k");
    if (data.ndim() != 2 || data.shape(1) != row_bytes(ti, k))
        throw std::invalid_argument("[decode_host] data must be (rows, " + std::to_string(row_bytes(ti, k)) + ") uint8");
    const int64_t rows = data.shape(0);
    py::array_t<float> out({rows, k});
    for (int64_t r = 0; r < rows; ++r) fk.decode_host(data.data(r, 0), k, out.mutable_data(r, 0));
    return out;
}

// The integer GEMV's numerics on the host. w: (n, row_bytes) uint8; x: (m, k) f32 -> (m, n) f32
py::array_t<float> gemv_q8_host(const std::string& qtype, py::array_t<uint8_t, py::array::c_style> w,
                                py::array_t<float, py::array::c_style> x, const std::string& layout) {
    const std::string op = "gemv_q8_host";
    const TypeInfo& ti = type_or_throw(op, qtype);
    const FormatKernels& fk = kernels_or_throw(op, ti, layout);
    if (!fk.gemv_q8_host) throw std::invalid_argument("[gemv_q8_host] no integer GEMV for " + std::string(ti.name));
    if (x.ndim() != 2 || w.ndim() != 2) throw std::invalid_argument("[gemv_q8_host] w and x must be 2-D");
    const int64_t m = x.shape(0), k = x.shape(1), n = w.shape(0);
    if (k % ti.block_size || w.shape(1) != row_bytes(ti, k)) throw std::invalid_argument("[gemv_q8_host] bad shapes");
    py::array_t<float> y({m, n});
    fk.gemv_q8_host(w.data(), row_bytes(ti, k), x.data(), y.mutable_data(), m, n, k);
    return y;
}

// The tensor-core GEMV's lane-by-lane host run (gemv_mma.cuh). w: (n, row_bytes) uint8; x: (m, k) -> (m, n)
py::array_t<float> gemv_mma_host(const std::string& qtype, py::array_t<uint8_t, py::array::c_style> w,
                                 py::array_t<float, py::array::c_style> x, const std::string& layout) {
    const std::string op = "gemv_mma_host";
    const TypeInfo& ti = type_or_throw(op, qtype);
    const FormatKernels& fk = kernels_or_throw(op, ti, layout);
    if (!fk.gemv_mma_host) throw std::invalid_argument("[gemv_mma_host] no mma kernel for " + std::string(ti.name));
    if (x.ndim() != 2 || w.ndim() != 2) throw std::invalid_argument("[gemv_mma_host] w and x must be 2-D");
    const int64_t m = x.shape(0), k = x.shape(1), n = w.shape(0);
    if (m < 1 || m > kGemvMmaMaxRows || k < 32 || k % ti.block_size || w.shape(1) != row_bytes(ti, k))
        throw std::invalid_argument("[gemv_mma_host] bad shapes");
    py::array_t<float> y({m, n});
    fk.gemv_mma_host(w.data(), row_bytes(ti, k), x.data(), y.mutable_data(), m, n, k);
    return y;
}

py::list gemv_mma_types() {
    py::list names;
    for (int i = 0; i < kTypeCount; ++i) {
        const TypeInfo& ti = type_info(static_cast<QType>(i));
        const FormatKernels* fk = format_kernels(ti.type);
        if (fk && fk->gemv_mma) names.append(ti.name);
    }
    return names;
}

py::list gemv_async_types() {
    py::list names;
    for (int i = 0; i < kTypeCount; ++i) {
        const TypeInfo& ti = type_info(static_cast<QType>(i));
        const FormatKernels* fk = format_kernels(ti.type);
        if (fk && fk->gemv_async) names.append(ti.name);
    }
    return names;
}

py::list gemv_q8_types() {
    py::list names;
    for (int i = 0; i < kTypeCount; ++i) {
        const TypeInfo& ti = type_info(static_cast<QType>(i));
        const FormatKernels* fk = format_kernels(ti.type);
        if (fk && fk->gemv_q8_host) names.append(ti.name);
    }
    return names;
}

py::list kernel_types() {
    py::list names;
    for (int i = 0; i < kTypeCount; ++i) {
        const TypeInfo& ti = type_info(static_cast<QType>(i));
        if (format_kernels(ti.type)) names.append(ti.name);
    }
    return names;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "lowbit's CUDA kernels: device buffers, DLPack interop, dequantize and matmul on the GPU";
    py::register_exception<DeviceOutOfMemory>(m, "CudaOutOfMemory", PyExc_MemoryError);

    py::class_<DeviceBuffer>(m, "DeviceBuffer")
        .def(py::init<int64_t, int>(), py::arg("nbytes"), py::arg("device"))
        .def_property_readonly("ptr", &DeviceBuffer::ptr)
        .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
        .def_property_readonly("device", &DeviceBuffer::device);

    m.def("upload", &upload, py::arg("buffer"), py::arg("host"), py::arg("stream") = 0);
    m.def("download", &download, py::arg("ptr"), py::arg("device"), py::arg("host"), py::arg("stream") = 0);
    m.def("dequantize", &dequantize, py::arg("w"), py::arg("qtype"), py::arg("rows"), py::arg("k"), py::arg("y_ptr"),
          py::arg("stream") = 0, py::arg("layout") = "gguf");
    m.def("matmul", &matmul, py::arg("w"), py::arg("qtype"), py::arg("n"), py::arg("k"), py::arg("x_ptr"), py::arg("m"),
          py::arg("y_ptr"), py::arg("stream") = 0, py::arg("kernel") = "auto", py::arg("layout") = "gguf");
    m.def("tile8_pack", [](const std::string& qtype, py::array_t<uint8_t, py::array::c_style> data, int64_t k) {
        return tile8_permute(qtype, data, k, true);
    }, py::arg("qtype"), py::arg("data"), py::arg("k"));
    m.def("tile8_unpack", [](const std::string& qtype, py::array_t<uint8_t, py::array::c_style> data, int64_t k) {
        return tile8_permute(qtype, data, k, false);
    }, py::arg("qtype"), py::arg("data"), py::arg("k"));
    m.def("group_matmul", &group_matmul, py::arg("codes"), py::arg("params"), py::arg("unit_group"), py::arg("xsrc"),
          py::arg("n"), py::arg("k"), py::arg("kp"), py::arg("groups"), py::arg("units_per_group"), py::arg("x_ptr"),
          py::arg("m"), py::arg("y_ptr"), py::arg("stream") = 0);
    m.def("group_dequantize", &group_dequantize, py::arg("codes"), py::arg("params"), py::arg("unit_group"),
          py::arg("xsrc"), py::arg("n"), py::arg("k"), py::arg("kp"), py::arg("groups"), py::arg("units_per_group"),
          py::arg("y_ptr"), py::arg("stream") = 0);
    m.def("group_gemv_host", &group_gemv_host, py::arg("codes"), py::arg("params"), py::arg("unit_group"),
          py::arg("xsrc"), py::arg("k"), py::arg("x"), py::arg("units_per_group") = 0);
    m.attr("tile8_weights") = kTileWeights;  // k must be a multiple of this for the tile8 layout
    m.def("tile8_types", [] {
        py::list names;
        for (int i = 0; i < kTypeCount; ++i)
            if (format_kernels_tile8(static_cast<QType>(i))) names.append(type_info(static_cast<QType>(i)).name);
        return names;
    });
    m.def("dlpack_view", &dlpack_view, py::arg("capsule"));
    m.def("dlpack_export", &dlpack_export, py::arg("owner"), py::arg("ptr"), py::arg("device"), py::arg("shape"),
          py::arg("versioned") = false);
    m.def("stream_wait", &stream_wait, py::arg("device"), py::arg("producer"), py::arg("consumer"));
    m.def("synchronize", &synchronize, py::arg("device"), py::arg("stream") = 0);
    m.def("device_count", &device_count);
    m.def("device_error", &device_error);
    m.def("device_info", &device_info, py::arg("device"));
    m.def("memory_info", &memory_info, py::arg("device"));
    m.def("bench_matmul", &bench_matmul, py::arg("weights"), py::arg("qtype"), py::arg("n"), py::arg("k"), py::arg("x_ptr"),
          py::arg("m"), py::arg("y_ptr"), py::arg("iters"), py::arg("stream") = 0, py::arg("kernel") = "auto",
          py::arg("layout") = "gguf", py::arg("graph") = false);
    m.def("bench_group_matmul", &bench_group_matmul, py::arg("weights"), py::arg("n"), py::arg("k"), py::arg("kp"),
          py::arg("groups"), py::arg("units_per_group"), py::arg("x_ptr"), py::arg("m"), py::arg("y_ptr"),
          py::arg("iters"));
    m.def("bench_copy", &bench_copy, py::arg("device"), py::arg("nbytes"), py::arg("iters"));
    m.def("kernel_types", &kernel_types);
    m.def("decode_host", &decode_host, py::arg("qtype"), py::arg("data"), py::arg("k"), py::arg("layout") = "gguf");
    m.def("gemv_q8_host", &gemv_q8_host, py::arg("qtype"), py::arg("w"), py::arg("x"), py::arg("layout") = "gguf");
    m.def("gemv_q8_types", &gemv_q8_types);
    m.def("gemv_mma_host", &gemv_mma_host, py::arg("qtype"), py::arg("w"), py::arg("x"), py::arg("layout") = "gguf");
    m.def("gemv_mma_types", &gemv_mma_types);
    m.def("gemv_async_types", &gemv_async_types);
    m.attr("compiled_archs") = LOWBIT_CUDA_ARCHS;
    m.def("gemv_max_rows", [](const std::string& qtype) {
        return kernels_or_throw("gemv_max_rows", type_or_throw("gemv_max_rows", qtype)).gemv_max_rows;
    }, py::arg("qtype"));
}
