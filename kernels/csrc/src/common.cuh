// Shared device helpers: float16/float32 loads and stores with float32 arithmetic.
#pragma once

#include <cuda_fp16.h>

#include "deblur/kernels.h"

namespace deblur::detail {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Every launch goes through DEBLUR_LAUNCH, so tests/emulate.h can run the same kernels on the CPU.
#ifdef DEBLUR_EMULATE
#define DEBLUR_LAUNCH(kernel, grid, block, stream, ...) ::deblur::emulate::launch(kernel, grid, block, __VA_ARGS__)
#else
#define DEBLUR_LAUNCH(kernel, grid, block, stream, ...) kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

inline unsigned ceil_div(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }

// Plugins pass sizes from TensorRT's int64 dims; reject what a grid or an int index cannot hold.
inline bool sizes_ok(long long elements, int batch) {
  return elements > 0 && elements < (1LL << 31) && batch > 0 && batch <= 65535;
}

}  // namespace deblur::detail
