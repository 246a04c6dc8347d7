// The CUDA kernels run on the CPU through emulate.h, checked by the same test as on a GPU
// (test_kernels.cu) at smaller attention sizes. Built by the host C++ compiler, needs no GPU.
#include "emulate.h"

// The kernels, compiled for the emulator.
#include "../src/attention_fusion.cu"
#include "../src/pixel_attention.cu"
#include "../src/self_attention.cu"

// The CUDA runtime calls the kernels and the test make: "device" memory is host memory.
extern "C" {
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** ptr, size_t size) {
  *ptr = std::malloc(size);
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, void const* src, size_t count, cudaMemcpyKind) {
  std::memcpy(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
char const* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }
}

#include "test_kernels.cu"
