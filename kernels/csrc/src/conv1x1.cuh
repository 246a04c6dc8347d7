// A 1x1 convolution (a per-pixel GEMM over channels) with a pluggable input loader and epilogue,
// the building block of pixel attention and attention fusion.
//
// Block: 256 threads = 8 warps, a tile of 64 pixels x (8 * CPT) output channels. A warp owns CPT
// consecutive output channels, a lane two pixels (lane, lane + 32), so one 128-bit shared-memory
// load of weights feeds 8 FMAs and every global access is coalesced along pixels. Input channels
// stream through shared memory in chunks of 32; accumulation is float32.
#pragma once

#include "common.cuh"

namespace deblur::detail {

constexpr int kConvThreads = 256;
constexpr int kConvTilePixels = 64;
constexpr int kConvChunk = 32;

template <typename T, typename Loader, typename Epilogue, int CPT>
__global__ void __launch_bounds__(kConvThreads)
conv1x1_kernel(Loader load, Epilogue store, T const* __restrict__ weight, T const* __restrict__ bias,
               int in_channels, int out_channels, int pixels) {
  static_assert(CPT % 4 == 0, "channels per thread must allow float4 weight loads");
  constexpr int kTileCo = 8 * CPT;
  __shared__ float xs[kConvChunk][kConvTilePixels];
  __shared__ __align__(16) float ws[kConvChunk][kTileCo];

  int const b = blockIdx.z;
  int const p0 = blockIdx.x * kConvTilePixels;
  int const co0 = blockIdx.y * kTileCo;
  int const lane = threadIdx.x & 31;
  int const warp = threadIdx.x >> 5;
  int const my_co = warp * CPT;

  float acc[2][CPT];
#pragma unroll
  for (int k = 0; k < CPT; ++k) {
    int const co = co0 + my_co + k;
    float const b0 = (bias != nullptr && co < out_channels) ? to_float(bias[co]) : 0.0f;
    acc[0][k] = b0;
    acc[1][k] = b0;
  }

  for (int ci0 = 0; ci0 < in_channels; ci0 += kConvChunk) {
    __syncthreads();  // the previous chunk's readers are done
    for (int i = threadIdx.x; i < kConvChunk * kConvTilePixels; i += kConvThreads) {
      int const ci = ci0 + i / kConvTilePixels;
      int const p = p0 + i % kConvTilePixels;
      xs[i / kConvTilePixels][i % kConvTilePixels] = (ci < in_channels && p < pixels) ? load(b, ci, p) : 0.0f;
    }
    for (int i = threadIdx.x; i < kConvChunk * kTileCo; i += kConvThreads) {
      int const ci = ci0 + i % kConvChunk;  // consecutive threads read one weight row: coalesced
      int const co = co0 + i / kConvChunk;
      ws[i % kConvChunk][i / kConvChunk] =
          (ci < in_channels && co < out_channels) ? to_float(weight[static_cast<long long>(co) * in_channels + ci])
                                                  : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int ci = 0; ci < kConvChunk; ++ci) {
      float const x0 = xs[ci][lane];
      float const x1 = xs[ci][lane + 32];
      float4 const* w4 = reinterpret_cast<float4 const*>(&ws[ci][my_co]);
#pragma unroll
      for (int k4 = 0; k4 < CPT / 4; ++k4) {
        float4 const w = w4[k4];
        acc[0][4 * k4 + 0] = fmaf(w.x, x0, acc[0][4 * k4 + 0]);
        acc[0][4 * k4 + 1] = fmaf(w.y, x0, acc[0][4 * k4 + 1]);
        acc[0][4 * k4 + 2] = fmaf(w.z, x0, acc[0][4 * k4 + 2]);
        acc[0][4 * k4 + 3] = fmaf(w.w, x0, acc[0][4 * k4 + 3]);
        acc[1][4 * k4 + 0] = fmaf(w.x, x1, acc[1][4 * k4 + 0]);
        acc[1][4 * k4 + 1] = fmaf(w.y, x1, acc[1][4 * k4 + 1]);
        acc[1][4 * k4 + 2] = fmaf(w.z, x1, acc[1][4 * k4 + 2]);
        acc[1][4 * k4 + 3] = fmaf(w.w, x1, acc[1][4 * k4 + 3]);
      }
    }
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    int const p = p0 + lane + 32 * half;
    if (p >= pixels) continue;
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      int const co = co0 + my_co + k;
      if (co < out_channels) store(b, co, p, acc[half][k]);
    }
  }
}

// Launch with the smallest channel tile that covers out_channels (at most 128 per block; wider
// layers take several blocks along y, each re-reading the input tile from L2).
template <typename T, typename Loader, typename Epilogue>
cudaError_t launch_conv1x1(Loader load, Epilogue store, T const* weight, T const* bias, int batch, int in_channels,
                           int out_channels, int pixels, cudaStream_t stream) {
  int const cpt = out_channels > 64 ? 16 : out_channels > 32 ? 8 : 4;
  auto* kernel = cpt == 16  ? &conv1x1_kernel<T, Loader, Epilogue, 16>
                 : cpt == 8 ? &conv1x1_kernel<T, Loader, Epilogue, 8>
                            : &conv1x1_kernel<T, Loader, Epilogue, 4>;
  dim3 const grid(ceil_div(pixels, kConvTilePixels), ceil_div(out_channels, 8 * cpt), batch);
  DEBLUR_LAUNCH(kernel, grid, dim3(kConvThreads), stream, load, store, weight, bias, in_channels, out_channels, pixels);
  return cudaGetLastError();
}

template <typename T>
struct DirectLoad {
  T const* __restrict__ x;
  int channels;
  int pixels;
  __device__ float operator()(int b, int c, int p) const {
    return to_float(x[(static_cast<long long>(b) * channels + c) * pixels + p]);
  }
};

}  // namespace deblur::detail
