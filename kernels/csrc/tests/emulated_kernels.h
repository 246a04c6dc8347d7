// The kernels of src/ compiled for the CPU emulator (emulate.h), and the CUDA runtime calls they and
// the tests make, with "device" memory being host memory. Include in exactly one translation unit
// of a program built with -DDEBLUR_EMULATE.
#pragma once

#include "emulate.h"

#include <cstdlib>
#include <cstring>

#include "../src/attention_fusion.cu"
#include "../src/pixel_attention.cu"
#include "../src/self_attention.cu"

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

