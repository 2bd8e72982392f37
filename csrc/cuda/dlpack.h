// The DLPack ABI (https://dmlc.github.io/dlpack/latest/c_api.html), declared here so the build needs
// no extra header: the legacy "dltensor" capsule (DLManagedTensor) and the versioned
// "dltensor_versioned" one (DLManagedTensorVersioned, DLPack >= 1.0). Layouts are fixed by the spec.
#pragma once
#include <cstdint>

namespace lowbit::dlpack {

enum DeviceType : int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13 };
enum DataTypeCode : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4 };

struct DLDevice { int32_t device_type; int32_t device_id; };
struct DLDataType { uint8_t code; uint8_t bits; uint16_t lanes; };
struct DLTensor {
    void* data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t* shape;    // (ndim,)
    int64_t* strides;  // (ndim,) in elements, or nullptr for compact row-major
    uint64_t byte_offset;
};
struct DLManagedTensor {
    DLTensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(DLManagedTensor* self);
};
struct DLPackVersion { uint32_t major; uint32_t minor; };
struct DLManagedTensorVersioned {
    DLPackVersion version;
    void* manager_ctx;
    void (*deleter)(DLManagedTensorVersioned* self);
    uint64_t flags;
    DLTensor dl_tensor;
};

}  // namespace lowbit::dlpack
