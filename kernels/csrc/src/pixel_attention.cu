// Pixel attention, y = x * sigmoid(conv1x1(x, W, b)) (RDAFNet's AM), in one pass over DRAM: each
// block reads its 64-pixel tile of x once (the epilogue's second read of x hits L1/L2) and writes
// y (and the map) once.
//
// Expected bound (CUDA-core FP32 FMAs, no tensor cores): per pixel 2*C^2 FLOP against
// (2 or 3)*C*bytes of traffic. C = 128, fp16: 32,768 FLOP per 512-768 B, ~43-64 FLOP/B, above the FP32
// ridge of both targets (Orin AGX 5.3 TFLOPS / 204.8 GB/s = 26; H100 SXM 67 TFLOPS / 3.35 TB/s = 20),
// so it is FMA bound: ~6 ms per 720p frame-layer on Orin, ~0.5 ms on H100 at peak. Small C (24) is
// bandwidth bound: 2*C*2 B per pixel (fp16 x and y), ~0.43 ms per 720p frame-layer on Orin. The Triton kernel reaches
// higher with tensor cores (tl.dot); a tensor-core (mma) version of this one is future work.
#include "conv1x1.cuh"

namespace deblur {
namespace detail {

template <typename T>
struct GateStore {
  T const* __restrict__ x;
  T* __restrict__ y;
  T* __restrict__ map;  // may be null
  int channels;
  int pixels;
  __device__ void operator()(int b, int c, int p, float logit) const {
    long long const i = (static_cast<long long>(b) * channels + c) * pixels + p;
    float const gate = 1.0f / (1.0f + __expf(-logit));
    y[i] = from_float<T>(to_float(x[i]) * gate);
    if (map != nullptr) map[i] = from_float<T>(gate);
  }
};

template <typename T>
cudaError_t pixel_attention_typed(void const* x, void const* weight, void const* bias, void* y, void* map, int batch,
                                  int channels, int pixels, cudaStream_t stream) {
  auto const* xt = static_cast<T const*>(x);
  DirectLoad<T> const load{xt, channels, pixels};
  GateStore<T> const store{xt, static_cast<T*>(y), static_cast<T*>(map), channels, pixels};
  return launch_conv1x1<T>(load, store, static_cast<T const*>(weight), static_cast<T const*>(bias), batch, channels,
                           channels, pixels, stream);
}

}  // namespace detail

cudaError_t pixel_attention(DType dtype, void const* x, void const* weight, void const* bias, void* y,
                            void* attention_map, int batch, int channels, int pixels, cudaStream_t stream) {
  if (x == nullptr || weight == nullptr || bias == nullptr || y == nullptr || channels <= 0 ||
      !detail::sizes_ok(static_cast<long long>(batch) * channels * pixels, batch)) {
    return cudaErrorInvalidValue;
  }
  if (dtype == DType::kFloat16) {
    return detail::pixel_attention_typed<__half>(x, weight, bias, y, attention_map, batch, channels, pixels, stream);
  }
  return detail::pixel_attention_typed<float>(x, weight, bias, y, attention_map, batch, channels, pixels, stream);
}

}  // namespace deblur
