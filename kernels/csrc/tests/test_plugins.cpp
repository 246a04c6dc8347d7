// CTest (where deblur_trt_plugins is built): loads the plugin library the way TensorRT does (dlopen,
// setLoggerFinder, getCreators) and drives the plugins through TensorRT's interfaces without
// libnvinfer or a GPU: names/namespace/version, attributes and their serialisation, type and format
// rules, shape checks, output shapes, workspace, clone, and that a failed launch is reported.
// Usage: deblur_test_plugins path/to/libdeblur_trt_plugins.so
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace nvinfer1;

int g_failures = 0;

void expect(bool ok, std::string const& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++g_failures;
}

struct CapturingLogger : ILogger {
  std::vector<std::string> messages;
  void log(Severity, AsciiChar const* msg) noexcept override { messages.emplace_back(msg); }
};

struct Finder : ILoggerFinder {
  CapturingLogger logger;
  ILogger* findLogger() override { return &logger; }
};

// getOutputShapes of these plugins copies input expressions and never calls the builder; TensorRT
// offers no public way to make one, so the test passes a stand-in whose methods are never called.
struct UnusedExprBuilder : IExprBuilder {};

Dims dims(std::vector<int64_t> const& d) {
  Dims out{};
  out.nbDims = static_cast<int32_t>(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) out.d[i] = d[i];
  return out;
}

DynamicPluginTensorDesc desc(std::vector<int64_t> const& d, DataType type = DataType::kHALF,
                             TensorFormat format = TensorFormat::kLINEAR) {
  DynamicPluginTensorDesc t{};
  t.desc.dims = dims(d);
  t.desc.type = type;
  t.desc.format = format;
  t.min = t.opt = t.max = dims(d);
  return t;
}

IPluginV3OneBuild* build(IPluginV3* p) {
  return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}
IPluginV3OneRuntime* runtime(IPluginV3* p) {
  return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}
IPluginV3OneCore* core(IPluginV3* p) {
  return static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
}

bool configure(IPluginV3* p, std::vector<DynamicPluginTensorDesc> const& in, int32_t n_out) {
  std::vector<DynamicPluginTensorDesc> out(n_out, in[0]);
  return build(p)->configurePlugin(in.data(), static_cast<int32_t>(in.size()), out.data(), n_out) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s libdeblur_trt_plugins.so\n", argv[0]);
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "dlopen failed: %s\n", dlerror());
    return 1;
  }
  using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
  using SetLoggerFinder = void (*)(ILoggerFinder*);
  auto get_creators = reinterpret_cast<GetCreators>(dlsym(lib, "getCreators"));
  auto set_logger_finder = reinterpret_cast<SetLoggerFinder>(dlsym(lib, "setLoggerFinder"));
  expect(get_creators != nullptr && set_logger_finder != nullptr, "library exports getCreators and setLoggerFinder");
  if (get_creators == nullptr || set_logger_finder == nullptr) return 1;
  Finder finder;
  set_logger_finder(&finder);

  int32_t n = 0;
  IPluginCreatorInterface* const* creators = get_creators(n);
  expect(n == 4, "four creators");
  std::vector<std::string> const names = {"pixel_attention", "pixel_attention_map", "attention_fusion",
                                          "self_attention"};
  std::vector<IPluginCreatorV3One*> by_name(4, nullptr);
  for (int32_t i = 0; i < n; ++i) {
    expect(std::strcmp(creators[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0,
           "creator " + std::to_string(i) + " is an IPluginCreatorV3One");
    auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
    for (std::size_t j = 0; j < names.size(); ++j) {
      if (names[j] == c->getPluginName()) by_name[j] = c;
    }
    expect(std::strcmp(c->getPluginNamespace(), "deblur") == 0 && std::strcmp(c->getPluginVersion(), "1") == 0,
           std::string(c->getPluginName()) + ": namespace deblur, version 1 (the ONNX parser's default)");
  }
  for (std::size_t j = 0; j < names.size(); ++j) expect(by_name[j] != nullptr, "a creator named " + names[j]);
  for (auto* c : by_name) {
    if (c == nullptr) return 1;
  }
  auto* pa_creator = by_name[0];
  auto* pam_creator = by_name[1];
  auto* af_creator = by_name[2];
  auto* sa_creator = by_name[3];

  // Attributes: only self_attention has one, `scale` (what kernels/onnx_ops.py writes).
  PluginFieldCollection const* sa_fields = sa_creator->getFieldNames();
  expect(sa_fields->nbFields == 1 && std::strcmp(sa_fields->fields[0].name, "scale") == 0 &&
             sa_fields->fields[0].type == PluginFieldType::kFLOAT32,
         "self_attention declares the float field 'scale'");
  expect(pa_creator->getFieldNames()->nbFields == 0 && af_creator->getFieldNames()->nbFields == 0,
         "pixel_attention and attention_fusion declare no fields");

  PluginFieldCollection empty{};
  expect(sa_creator->createPlugin("sa", &empty, TensorRTPhase::kBUILD) == nullptr,
         "self_attention without 'scale' is refused");
  expect(!finder.logger.messages.empty() && finder.logger.messages.back().find("scale") != std::string::npos,
         "  ... with a logged reason naming 'scale'");
  float const scale = 0.125f;
  PluginField field("scale", &scale, PluginFieldType::kFLOAT32, 1);
  PluginFieldCollection with_scale{1, &field};
  IPluginV3* sa = sa_creator->createPlugin("sa", &with_scale, TensorRTPhase::kBUILD);
  expect(sa != nullptr, "self_attention created with scale = 0.125");
  if (sa == nullptr) return 1;
  PluginFieldCollection const* saved = runtime(sa)->getFieldsToSerialize();
  bool const saved_ok = saved->nbFields == 1 && std::strcmp(saved->fields[0].name, "scale") == 0 &&
                        *static_cast<float const*>(saved->fields[0].data) == scale;
  expect(saved_ok, "self_attention serialises scale = 0.125");
  IPluginV3* restored = sa_creator->createPlugin("sa", saved, TensorRTPhase::kRUNTIME);
  expect(restored != nullptr &&
             *static_cast<float const*>(runtime(restored)->getFieldsToSerialize()->fields[0].data) == scale,
         "self_attention re-created at run time from its serialised fields");

  IPluginV3* pa = pa_creator->createPlugin("pa", &empty, TensorRTPhase::kBUILD);
  IPluginV3* pam = pam_creator->createPlugin("pam", &empty, TensorRTPhase::kBUILD);
  IPluginV3* af = af_creator->createPlugin("af", &empty, TensorRTPhase::kBUILD);
  expect(pa && pam && af, "the three attribute-free plugins are created");
  if (!(pa && pam && af)) return 1;
  for (auto [p, name] : {std::pair{pa, "pixel_attention"}, std::pair{pam, "pixel_attention_map"},
                         std::pair{af, "attention_fusion"}, std::pair{sa, "self_attention"}}) {
    expect(std::strcmp(core(p)->getPluginName(), name) == 0 && std::strcmp(core(p)->getPluginNamespace(), "deblur") == 0,
           std::string(name) + ": core name and namespace match its creator");
    IPluginV3* copy = p->clone();
    IPluginV3* attached = runtime(p)->attachToContext(nullptr);
    expect(copy && attached && std::strcmp(core(copy)->getPluginName(), name) == 0,
           std::string(name) + ": clone and attachToContext give the same plugin");
    delete copy;
    delete attached;
  }
  expect(build(pa)->getNbOutputs() == 1 && build(pam)->getNbOutputs() == 2 && build(af)->getNbOutputs() == 1 &&
             build(sa)->getNbOutputs() == 1,
         "outputs: pixel_attention 1, pixel_attention_map 2 (y, map), attention_fusion 1, self_attention 1");

  // Types and formats: LINEAR, all FP16 or all FP32.
  std::vector<DynamicPluginTensorDesc> io = {desc({1, 8, 5, 7}), desc({8, 8, 1, 1}), desc({8}), desc({1, 8, 5, 7})};
  expect(build(pa)->supportsFormatCombination(0, io.data(), 3, 1) &&
             build(pa)->supportsFormatCombination(3, io.data(), 3, 1),
         "pixel_attention takes FP16 LINEAR throughout");
  io[1].desc.type = DataType::kFLOAT;
  expect(!build(pa)->supportsFormatCombination(1, io.data(), 3, 1), "  ... but not FP16 mixed with FP32");
  io[0].desc.type = DataType::kINT8;
  expect(!build(pa)->supportsFormatCombination(0, io.data(), 3, 1), "  ... nor INT8");
  io[0] = desc({1, 8, 5, 7}, DataType::kFLOAT, TensorFormat::kCHW32);
  expect(!build(pa)->supportsFormatCombination(0, io.data(), 3, 1), "  ... nor a vectorised format (CHW32)");
  DataType out_types[2];
  DataType const in_half[3] = {DataType::kHALF, DataType::kHALF, DataType::kHALF};
  DataType const in_int[3] = {DataType::kINT32, DataType::kINT32, DataType::kINT32};
  expect(build(pam)->getOutputDataTypes(out_types, 2, in_half, 3) == 0 && out_types[0] == DataType::kHALF &&
             out_types[1] == DataType::kHALF,
         "pixel_attention_map outputs take the input type (FP16)");
  expect(build(pam)->getOutputDataTypes(out_types, 2, in_int, 3) != 0, "  ... and INT32 inputs are refused");

  // Shape rules (-1: a dynamic dimension not yet known).
  expect(configure(pa, {desc({-1, 24, -1, -1}), desc({24, 24, 1, 1}), desc({24})}, 1),
         "pixel_attention accepts dynamic B/H/W with C = 24");
  expect(!configure(pa, {desc({1, 24, 5, 5}), desc({24, 25, 1, 1}), desc({24})}, 1),
         "pixel_attention refuses a (24, 25) weight");
  expect(configure(af, {desc({-1, 48, -1, -1}), desc({24, 48, 1, 1}), desc({24}), desc({24, 1, 3, 3}),
                        desc({24, 24, 1, 1}), desc({-1, 24, -1, -1})},
                   1),
         "attention_fusion accepts two 24-channel maps");
  expect(!configure(af, {desc({1, 50, 5, 5}), desc({24, 50, 1, 1}), desc({24}), desc({24, 1, 3, 3}),
                         desc({24, 24, 1, 1}), desc({1, 24, 5, 5})},
                    1),
         "attention_fusion refuses 50 map channels for C = 24");
  expect(!configure(af, {desc({1, 48, 5, 6}), desc({24, 48, 1, 1}), desc({24}), desc({24, 1, 3, 3}),
                         desc({24, 24, 1, 1}), desc({1, 24, 5, 5})},
                    1),
         "attention_fusion refuses maps and features of different sizes");
  expect(configure(sa, {desc({1, 16, -1}), desc({1, 16, -1}), desc({1, 40, -1})}, 1),
         "self_attention accepts dynamic token counts, Dv != D");
  expect(!configure(sa, {desc({1, 16, 9}), desc({1, 17, 9}), desc({1, 40, 9})}, 1),
         "self_attention refuses q/k channel mismatch");

  // Output shapes: which input expressions each output takes.
  IDimensionExpr const* fake[12];
  for (int i = 0; i < 12; ++i) fake[i] = reinterpret_cast<IDimensionExpr const*>(static_cast<std::uintptr_t>(64 + 8 * i));
  DimsExprs in3[3];
  for (int t = 0; t < 3; ++t) {
    in3[t].nbDims = 3;
    for (int d = 0; d < 3; ++d) in3[t].d[d] = fake[3 * t + d];
  }
  DimsExprs out3[1];
  UnusedExprBuilder unused_builder;
  expect(build(sa)->getOutputShapes(in3, 3, nullptr, 0, out3, 1, unused_builder) == 0 && out3[0].nbDims == 3 &&
             out3[0].d[0] == fake[0] && out3[0].d[1] == fake[7] && out3[0].d[2] == fake[2],
         "self_attention output shape is (q.B, v.C, q.N)");

  // Workspace: the fused map in float32 at the largest shape.
  std::vector<DynamicPluginTensorDesc> af_in = {desc({2, 48, 37, 53}), desc({24, 48, 1, 1}), desc({24}),
                                                desc({24, 1, 3, 3}),   desc({24, 24, 1, 1}), desc({2, 24, 37, 53})};
  af_in[5].max = dims({2, 24, 64, 80});
  std::vector<DynamicPluginTensorDesc> af_out = {af_in[5]};
  expect(build(af)->getWorkspaceSize(af_in.data(), 6, af_out.data(), 1) == std::size_t(2) * 24 * 64 * 80 * 4,
         "attention_fusion workspace = B*C*H*W*4 bytes at the profile maximum");

  // A launch that cannot run (null buffers here; no driver on a CPU machine) returns an error and logs it.
  PluginTensorDesc run_in[3] = {io[0].desc, io[1].desc, io[2].desc};
  run_in[0].dims = dims({1, 8, 5, 7});
  run_in[0].type = run_in[1].type = run_in[2].type = DataType::kFLOAT;
  void const* null_inputs[3] = {nullptr, nullptr, nullptr};
  void* null_outputs[1] = {nullptr};
  std::size_t const logged = finder.logger.messages.size();
  expect(runtime(pa)->enqueue(run_in, run_in, null_inputs, null_outputs, nullptr, nullptr) != 0 &&
             finder.logger.messages.size() > logged,
         "pixel_attention enqueue reports a failed launch through TensorRT's logger");

  for (IPluginV3* p : {pa, pam, af, sa, restored}) delete p;
  std::printf("%s\n", g_failures == 0 ? "all plugin checks passed" : "FAILED");
  return g_failures == 0 ? 0 : 1;
}
