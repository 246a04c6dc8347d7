// CTest: the CUDA kernels against the host references, float32 and float16, on the fixtures' odd
// shapes (random inputs). Needs a GPU: without one it prints why and exits 77 (CTest: skipped).
// test_emulated.cpp runs this same test with the kernels on the CPU (tests/emulate.h).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <string>
#include <vector>

#include "deblur/kernels.h"
#include "reference.h"

namespace {

constexpr int kSkip = 77;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(cudaError_t status, char const* what) {
  if (status != cudaSuccess) throw Failure(std::string(what) + ": " + cudaGetErrorString(status));
}

std::vector<float> random_values(std::size_t n, float low, float high, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A tensor on the device in the test's dtype; `host` holds the values the device really holds
// (rounded to float16 for the float16 runs), which is what the reference must see.
struct DeviceTensor {
  void* ptr = nullptr;
  std::vector<float> host;
  DeviceTensor(std::vector<float> values, deblur::DType dtype) : host(std::move(values)) {
    std::size_t const n = host.size();
    if (dtype == deblur::DType::kFloat16) {
      std::vector<__half> h(n);
      for (std::size_t i = 0; i < n; ++i) {
        h[i] = __float2half(host[i]);
        host[i] = __half2float(h[i]);
      }
      check(cudaMalloc(&ptr, n * sizeof(__half)), "cudaMalloc");
      check(cudaMemcpy(ptr, h.data(), n * sizeof(__half), cudaMemcpyHostToDevice), "cudaMemcpy");
    } else {
      check(cudaMalloc(&ptr, n * sizeof(float)), "cudaMalloc");
      check(cudaMemcpy(ptr, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    }
  }
  DeviceTensor(std::size_t n, deblur::DType dtype) : DeviceTensor(std::vector<float>(n, NAN), dtype) {}
  ~DeviceTensor() { cudaFree(ptr); }
  DeviceTensor(DeviceTensor const&) = delete;
  DeviceTensor& operator=(DeviceTensor const&) = delete;

  std::vector<float> read(deblur::DType dtype) const {
    std::size_t const n = host.size();
    std::vector<float> out(n);
    if (dtype == deblur::DType::kFloat16) {
      std::vector<__half> h(n);
      check(cudaMemcpy(h.data(), ptr, n * sizeof(__half), cudaMemcpyDeviceToHost), "cudaMemcpy");
      for (std::size_t i = 0; i < n; ++i) out[i] = __half2float(h[i]);
    } else {
      check(cudaMemcpy(out.data(), ptr, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    }
    return out;
  }
};

// float32: 1e-4 absolute (float32 accumulation in another order); float16: 1e-2 relative to max(1, |ref|).
bool compare(std::string const& what, std::vector<float> const& got, std::vector<float> const& want,
             deblur::DType dtype) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    double const scale = dtype == deblur::DType::kFloat16 ? std::fmax(1.0, std::fabs(want[i])) : 1.0;
    double const e = std::fabs(static_cast<double>(got[i]) - want[i]) / scale;
    if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;
  }
  double const tolerance = dtype == deblur::DType::kFloat16 ? 1e-2 : 1e-4;
  bool const ok = worst <= tolerance;
  std::printf("%-44s %s error %.3g %s\n", what.c_str(), dtype == deblur::DType::kFloat16 ? "fp16" : "fp32", worst,
              ok ? "ok" : "FAIL");
  return ok;
}

bool run(deblur::DType dtype, std::mt19937& rng) {
  bool ok = true;
  int const height = 37, width = 53, pixels = height * width;
  for (auto [batch, c] : {std::pair{2, 24}, std::pair{1, 130}}) {
    DeviceTensor x(random_values(std::size_t(batch) * c * pixels, -2.f, 2.f, rng), dtype);
    DeviceTensor w(random_values(std::size_t(c) * c, -0.2f, 0.2f, rng), dtype);
    DeviceTensor b(random_values(c, -0.1f, 0.1f, rng), dtype);
    DeviceTensor y(x.host.size(), dtype), map(x.host.size(), dtype);
    check(deblur::pixel_attention(dtype, x.ptr, w.ptr, b.ptr, y.ptr, map.ptr, batch, c, pixels, nullptr),
          "pixel_attention");
    check(cudaDeviceSynchronize(), "pixel_attention");
    std::vector<float> want_map;
    auto const want = deblur::reference::pixel_attention(x.host, w.host, b.host, batch, c, pixels, &want_map);
    std::string const name = "pixel_attention " + std::to_string(batch) + "x" + std::to_string(c) + "x37x53";
    ok &= compare(name + " y", y.read(dtype), want, dtype);
    ok &= compare(name + " map", map.read(dtype), want_map, dtype);
  }
  for (auto [batch, c, k] : {std::tuple{2, 24, 3}, std::tuple{1, 130, 2}}) {
    DeviceTensor maps(random_values(std::size_t(batch) * k * c * pixels, 0.f, 1.f, rng), dtype);
    DeviceTensor fw(random_values(std::size_t(c) * k * c, -0.1f, 0.1f, rng), dtype);
    DeviceTensor fb(random_values(c, -0.1f, 0.1f, rng), dtype);
    DeviceTensor dw(random_values(std::size_t(c) * 9, -0.3f, 0.3f, rng), dtype);
    DeviceTensor pw(random_values(std::size_t(c) * c, -0.2f, 0.2f, rng), dtype);
    DeviceTensor features(random_values(std::size_t(batch) * c * pixels, -2.f, 2.f, rng), dtype);
    DeviceTensor out(features.host.size(), dtype);
    void* workspace = nullptr;
    check(cudaMalloc(&workspace, deblur::attention_fusion_workspace_bytes(batch, c, height, width)), "cudaMalloc");
    cudaError_t const status = deblur::attention_fusion(dtype, maps.ptr, fw.ptr, fb.ptr, dw.ptr, pw.ptr, features.ptr,
                                                        out.ptr, workspace, batch, k * c, c, height, width, nullptr);
    cudaError_t const done = cudaDeviceSynchronize();
    cudaFree(workspace);
    check(status, "attention_fusion");
    check(done, "attention_fusion");
    auto const want = deblur::reference::attention_fusion(maps.host, fw.host, fb.host, dw.host, pw.host, features.host,
                                                          batch, k * c, c, height, width);
    ok &= compare("attention_fusion " + std::to_string(batch) + "x" + std::to_string(k) + "*" + std::to_string(c) +
                      "x37x53",
                  out.read(dtype), want, dtype);
  }
#ifdef DEBLUR_EMULATE
  int const tokens = 100;  // the CPU emulation of a block is slow: fewer tokens, still 4 tiles, the last partial
#else
  int const tokens = pixels;
#endif
  for (auto [batch, d, dv, n, m, scale] : {std::tuple{1, 24, 24, tokens, tokens, 1.0f},
                                           std::tuple{1, 130, 130, tokens, tokens, 0.0877f},
                                           std::tuple{2, 16, 200, 37, 53, 0.25f}}) {
    DeviceTensor q(random_values(std::size_t(batch) * d * n, -1.f, 1.f, rng), dtype);
    DeviceTensor k(random_values(std::size_t(batch) * d * m, -1.f, 1.f, rng), dtype);
    DeviceTensor v(random_values(std::size_t(batch) * dv * m, -2.f, 2.f, rng), dtype);
    DeviceTensor out(std::size_t(batch) * dv * n, dtype);
    check(deblur::self_attention(dtype, q.ptr, k.ptr, v.ptr, out.ptr, scale, batch, d, dv, n, m, nullptr),
          "self_attention");
    check(cudaDeviceSynchronize(), "self_attention");
    auto const want = deblur::reference::self_attention(q.host, k.host, v.host, scale, batch, d, dv, n, m);
    ok &= compare("self_attention " + std::to_string(batch) + "x" + std::to_string(d) + "/" + std::to_string(dv) +
                      " N=" + std::to_string(n) + " M=" + std::to_string(m),
                  out.read(dtype), want, dtype);
  }
  return ok;
}

}  // namespace

int main() {
  int devices = 0;
  cudaError_t const status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("skipped: no usable CUDA device (%s); the kernels were compiled, not run\n",
                status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
    return kSkip;
  }
  std::mt19937 rng(15);
  try {
    bool const ok = run(deblur::DType::kFloat32, rng) & run(deblur::DType::kFloat16, rng);
    std::printf(ok ? "all kernels match the host references\n" : "FAILED\n");
    return ok ? 0 : 1;
  } catch (Failure const& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
