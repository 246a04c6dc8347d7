// CTest (where deblur_trt_plugins is built): each plugin's enqueue, called the way TensorRT calls it
// (tensor descriptors, input/output pointer arrays, workspace), with the kernels running on the CPU
// (emulate.h), against the host references. Checks what the plugins add to the kernels: reading
// B/C/H/W/N/M from the descriptors, input order, the second output, the workspace, the serialised scale.
#include "emulated_kernels.h"

#include <NvInferRuntime.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "plugins.h"
#include "reference.h"

namespace {

using namespace nvinfer1;

int g_failures = 0;

std::vector<float> random_values(std::size_t n, float low, float high, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

PluginTensorDesc desc(std::vector<int64_t> const& dims, DataType type = DataType::kFLOAT) {
  PluginTensorDesc d{};
  d.dims.nbDims = static_cast<int32_t>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) d.dims.d[i] = dims[i];
  d.type = type;
  d.format = TensorFormat::kLINEAR;
  return d;
}

void expect_close(std::string const& what, std::vector<float> const& got, std::vector<float> const& want,
                  double tolerance) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    double const e = std::fabs(double(got[i]) - want[i]) / std::fmax(1.0, std::fabs(want[i]));
    if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;
  }
  bool const ok = got.size() == want.size() && worst <= tolerance;
  std::printf("%s %-50s error %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), worst);
  if (!ok) ++g_failures;
}

IPluginV3* create(IPluginCreatorV3One* creator, PluginFieldCollection const* fields) {
  IPluginV3* p = creator->createPlugin("test", fields, TensorRTPhase::kBUILD);
  if (p == nullptr) {
    std::fprintf(stderr, "could not create %s\n", creator->getPluginName());
    std::exit(1);
  }
  return p;
}

int32_t enqueue(IPluginV3* p, std::vector<PluginTensorDesc> const& in, std::vector<PluginTensorDesc> const& out,
                std::vector<void const*> const& inputs, std::vector<void*> const& outputs, void* workspace) {
  auto* runtime = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  return runtime->enqueue(in.data(), out.data(), inputs.data(), outputs.data(), workspace, nullptr);
}

}  // namespace

int main() {
  std::mt19937 rng(15);
  PluginFieldCollection empty{};
  int const h = 37, w = 53, pixels = h * w;

  {  // pixel_attention_map, float32: two outputs
    int const b = 2, c = 24;
    auto x = random_values(std::size_t(b) * c * pixels, -2.f, 2.f, rng);
    auto wt = random_values(std::size_t(c) * c, -0.2f, 0.2f, rng);
    auto bias = random_values(c, -0.1f, 0.1f, rng);
    std::vector<float> y(x.size()), map(x.size()), want_map;
    IPluginV3* p = create(deblur::trt::pixel_attention_map_creator(), &empty);
    auto const xd = desc({b, c, h, w});
    int32_t const status = enqueue(p, {xd, desc({c, c, 1, 1}), desc({c})}, {xd, xd}, {x.data(), wt.data(), bias.data()},
                                   {y.data(), map.data()}, nullptr);
    auto const want = deblur::reference::pixel_attention(x, wt, bias, b, c, pixels, &want_map);
    if (status != 0) ++g_failures;
    expect_close("pixel_attention_map y (fp32, 2x24x37x53)", y, want, 1e-5);
    expect_close("pixel_attention_map map", map, want_map, 1e-5);
    delete p;
  }
  {  // pixel_attention, float16
    int const b = 1, c = 130;
    auto x = random_values(std::size_t(b) * c * pixels, -2.f, 2.f, rng);
    auto wt = random_values(std::size_t(c) * c, -0.1f, 0.1f, rng);
    auto bias = random_values(c, -0.1f, 0.1f, rng);
    auto half = [](std::vector<float>& v) {
      std::vector<__half> out(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        out[i] = __float2half(v[i]);
        v[i] = __half2float(out[i]);
      }
      return out;
    };
    auto xh = half(x), wh = half(wt), bh = half(bias);
    std::vector<__half> yh(x.size());
    IPluginV3* p = create(deblur::trt::pixel_attention_creator(), &empty);
    auto const xd = desc({b, c, h, w}, DataType::kHALF);
    int32_t const status = enqueue(p, {xd, desc({c, c, 1, 1}, DataType::kHALF), desc({c}, DataType::kHALF)}, {xd},
                                   {xh.data(), wh.data(), bh.data()}, {yh.data()}, nullptr);
    std::vector<float> y(yh.size());
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = __half2float(yh[i]);
    if (status != 0) ++g_failures;
    expect_close("pixel_attention y (fp16, 1x130x37x53)", y, deblur::reference::pixel_attention(x, wt, bias, b, c,
                                                                                              pixels, nullptr),
                 1e-2);
    delete p;
  }
  {  // attention_fusion, float32: maps concatenated, workspace sized by the plugin
    int const b = 2, c = 24, k = 3;
    auto maps = random_values(std::size_t(b) * k * c * pixels, 0.f, 1.f, rng);
    auto fw = random_values(std::size_t(c) * k * c, -0.1f, 0.1f, rng);
    auto fb = random_values(c, -0.1f, 0.1f, rng);
    auto dw = random_values(std::size_t(c) * 9, -0.3f, 0.3f, rng);
    auto pw = random_values(std::size_t(c) * c, -0.2f, 0.2f, rng);
    auto features = random_values(std::size_t(b) * c * pixels, -2.f, 2.f, rng);
    std::vector<float> out(features.size());
    IPluginV3* p = create(deblur::trt::attention_fusion_creator(), &empty);
    auto* build = static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
    std::vector<PluginTensorDesc> in = {desc({b, k * c, h, w}), desc({c, k * c, 1, 1}), desc({c}),
                                        desc({c, 1, 3, 3}),     desc({c, c, 1, 1}),     desc({b, c, h, w})};
    std::vector<DynamicPluginTensorDesc> dyn(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) dyn[i].desc = in[i], dyn[i].min = dyn[i].opt = dyn[i].max = in[i].dims;
    std::vector<DynamicPluginTensorDesc> dyn_out = {dyn[5]};
    std::vector<char> workspace(build->getWorkspaceSize(dyn.data(), 6, dyn_out.data(), 1));
    int32_t const status = enqueue(p, in, {in[5]}, {maps.data(), fw.data(), fb.data(), dw.data(), pw.data(),
                                                    features.data()},
                                   {out.data()}, workspace.data());
    if (status != 0) ++g_failures;
    expect_close("attention_fusion (fp32, 2x3*24x37x53)", out,
                 deblur::reference::attention_fusion(maps, fw, fb, dw, pw, features, b, k * c, c, h, w), 1e-5);
    delete p;
  }
  {  // self_attention, float32: N != M, Dv != D, scale through the serialised field
    int const b = 2, d = 16, dv = 40, n = 37, m = 53;
    float const scale = 0.25f;
    PluginField field("scale", &scale, PluginFieldType::kFLOAT32, 1);
    PluginFieldCollection fields{1, &field};
    IPluginV3* built = create(deblur::trt::self_attention_creator(), &fields);
    auto* runtime_of_built =
        static_cast<IPluginV3OneRuntime*>(built->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    IPluginV3* p = deblur::trt::self_attention_creator()->createPlugin("test", runtime_of_built->getFieldsToSerialize(),
                                                                      TensorRTPhase::kRUNTIME);
    auto q = random_values(std::size_t(b) * d * n, -1.f, 1.f, rng);
    auto kk = random_values(std::size_t(b) * d * m, -1.f, 1.f, rng);
    auto v = random_values(std::size_t(b) * dv * m, -2.f, 2.f, rng);
    std::vector<float> out(std::size_t(b) * dv * n);
    int32_t const status = enqueue(p, {desc({b, d, n}), desc({b, d, m}), desc({b, dv, m})}, {desc({b, dv, n})},
                                   {q.data(), kk.data(), v.data()}, {out.data()}, nullptr);
    if (status != 0) ++g_failures;
    expect_close("self_attention (fp32, deserialised, N=37 M=53 Dv=40)", out,
                 deblur::reference::self_attention(q, kk, v, scale, b, d, dv, n, m), 1e-5);
    delete built;
    delete p;
  }
  std::printf("%s\n", g_failures == 0 ? "all plugins match the host references" : "FAILED");
  return g_failures == 0 ? 0 : 1;
}
