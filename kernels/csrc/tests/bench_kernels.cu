// Timing of the CUDA kernels at 720p, for checking the bounds their header comments state on a real
// GPU (Orin AGX: 204.8 GB/s, 5.3 FP32 TFLOPS; H100 SXM: 3.35 TB/s, 67 FP32 TFLOPS). Not a test: run it
// by hand (build/kernels/csrc/deblur_bench_kernels). It has not been run by us: we have no GPU.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "deblur/kernels.h"

namespace {

bool ok(cudaError_t status, char const* what) {
  if (status != cudaSuccess) std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(status));
  return status == cudaSuccess;
}

void* device_buffer(std::size_t bytes) {
  void* p = nullptr;
  if (!ok(cudaMalloc(&p, bytes), "cudaMalloc") || !ok(cudaMemset(p, 0, bytes), "cudaMemset")) return nullptr;
  return p;
}

// 3 warm-up launches, then the mean of 20 timed with CUDA events.
float time_ms(std::function<cudaError_t()> const& launch) {
  for (int i = 0; i < 3; ++i) launch();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < 20; ++i) launch();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 20.0f;
}

void report(char const* what, float ms, double bytes, double flops) {
  std::printf("%-52s %8.3f ms %9.1f GB/s %8.2f TFLOPS\n", what, ms, bytes / ms / 1e6, flops / ms / 1e9);
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no usable CUDA device: nothing to time\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("%s (sm_%d%d), fp16 I/O, 720p (1x C x 720 x 1280)\n", prop.name, prop.major, prop.minor);
  constexpr int kH = 720, kW = 1280, kPixels = kH * kW;
  constexpr double kHalf = 2.0;
  for (int c : {24, 128}) {
    std::size_t const n = std::size_t(c) * kPixels;
    void* x = device_buffer(n * 2);
    void* y = device_buffer(n * 2);
    void* w = device_buffer(std::size_t(c) * c * 2);
    void* b = device_buffer(c * 2);
    if (!(x && y && w && b)) return 1;
    float const ms = time_ms([&] {
      return deblur::pixel_attention(deblur::DType::kFloat16, x, w, b, y, nullptr, 1, c, kPixels, nullptr);
    });
    char what[64];
    std::snprintf(what, sizeof what, "pixel_attention C=%d", c);
    report(what, ms, 2.0 * n * kHalf, 2.0 * c * c * kPixels);
    for (void* p : {x, y, w, b}) cudaFree(p);
  }
  {
    int const c = 128, k = 4;
    std::size_t const n = std::size_t(c) * kPixels;
    void* maps = device_buffer(k * n * 2);
    void* features = device_buffer(n * 2);
    void* out = device_buffer(n * 2);
    void* fw = device_buffer(std::size_t(c) * k * c * 2);
    void* fb = device_buffer(c * 2);
    void* dw = device_buffer(std::size_t(c) * 9 * 2);
    void* pw = device_buffer(std::size_t(c) * c * 2);
    void* ws = device_buffer(deblur::attention_fusion_workspace_bytes(1, c, kH, kW));
    if (!(maps && features && out && fw && fb && dw && pw && ws)) return 1;
    float const ms = time_ms([&] {
      return deblur::attention_fusion(deblur::DType::kFloat16, maps, fw, fb, dw, pw, features, out, ws, 1, k * c, c,
                                      kH, kW, nullptr);
    });
    double const bytes = (k + 2.0) * n * kHalf + 2.0 * n * 4.0;  // maps, features, out; fused map written + read
    report("attention_fusion C=128, 4 maps", ms, bytes, (2.0 * c * k * c + 18.0 * c + 2.0 * c * c) * kPixels);
    for (void* p : {maps, features, out, fw, fb, dw, pw, ws}) cudaFree(p);
  }
  {
    int const d = 128, tokens = (kH / 4) * (kW / 4) / 4;  // MSAN attends on a downsampled map
    std::size_t const n = std::size_t(d) * tokens;
    void* q = device_buffer(n * 2);
    void* k = device_buffer(n * 2);
    void* v = device_buffer(n * 2);
    void* o = device_buffer(n * 2);
    if (!(q && k && v && o)) return 1;
    float const ms = time_ms([&] {
      return deblur::self_attention(deblur::DType::kFloat16, q, k, v, o, 1.0f, 1, d, d, tokens, tokens, nullptr);
    });
    char what[64];
    std::snprintf(what, sizeof what, "self_attention D=Dv=128, N=M=%d", tokens);
    report(what, ms, 4.0 * n * kHalf, 2.0 * tokens * double(tokens) * (2 * d));
    for (void* p : {q, k, v, o}) cudaFree(p);
  }
  return ok(cudaGetLastError(), "launch") ? 0 : 1;
}
