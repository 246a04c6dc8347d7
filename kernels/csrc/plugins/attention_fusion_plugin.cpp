// deblur::attention_fusion (maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features) -> out:
// out = features * pw(dw3x3(conv1x1(maps))). maps (B, k*C, H, W) is the layer's maps concatenated
// (kernels/onnx_ops.py puts a Concat in front); features (B, C, H, W); dynamic B/H/W.
// Workspace: the fused map in float32, B*C*H*W*4 bytes at the profile's largest shape.
#include <string>

#include "plugin_base.h"
#include "plugins.h"

namespace deblur::trt {
namespace {

enum Input : int32_t { kMaps, kFuseWeight, kFuseBias, kDwWeight, kPwWeight, kFeatures, kInputs };

class AttentionFusionPlugin final : public PluginBase {
 public:
  AttentionFusionPlugin() : PluginBase("attention_fusion", kInputs, 1) {}

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new AttentionFusionPlugin();
    } catch (...) {
      return nullptr;
    }
  }

  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t n_inputs, nvinfer1::DimsExprs const*, int32_t,
                          nvinfer1::DimsExprs* outputs, int32_t n_outputs, nvinfer1::IExprBuilder&) noexcept override {
    if (n_inputs != kInputs || n_outputs != 1 || inputs[kFeatures].nbDims != 4) return -1;
    outputs[0] = inputs[kFeatures];
    return 0;
  }

  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t n_inputs,
                          nvinfer1::DynamicPluginTensorDesc const*, int32_t) const noexcept override {
    if (n_inputs != kInputs) return 0;
    int64_t const n = volume(inputs[kFeatures].max);
    return n > 0 ? static_cast<size_t>(n) * sizeof(float) : 0;
  }

  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc, nvinfer1::PluginTensorDesc const*,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override {
    DType dtype{};
    nvinfer1::Dims const& f = input_desc[kFeatures].dims;
    nvinfer1::Dims const& maps = input_desc[kMaps].dims;
    if (!to_dtype(input_desc[0].type, dtype) || f.nbDims != 4 || maps.nbDims != 4) return -1;
    return launch_result(attention_fusion(
        dtype, inputs[kMaps], inputs[kFuseWeight], inputs[kFuseBias], inputs[kDwWeight], inputs[kPwWeight],
        inputs[kFeatures], outputs[0], workspace, static_cast<int>(f.d[0]), static_cast<int>(maps.d[1]),
        static_cast<int>(f.d[1]), static_cast<int>(f.d[2]), static_cast<int>(f.d[3]), stream));
  }

 protected:
  std::string check_shapes(nvinfer1::Dims const* in) const noexcept override {
    nvinfer1::Dims const& maps = in[kMaps];
    nvinfer1::Dims const& features = in[kFeatures];
    if (maps.nbDims != 4 || features.nbDims != 4) return "maps and features must be (B, C, H, W)";
    int64_t const c = features.d[1];
    int64_t const kc = maps.d[1];
    if (c < 0 || kc < 0) return {};
    if (kc % c != 0) return "maps must hold a whole number of C = " + std::to_string(c) + " channel maps";
    for (int i : {0, 2, 3}) {
      if (maps.d[i] >= 0 && features.d[i] >= 0 && maps.d[i] != features.d[i]) {
        return "maps and features must have the same batch, height and width";
      }
    }
    auto bad = [](nvinfer1::Dims const& d, int64_t n) { return volume(d) >= 0 && volume(d) != n; };
    if (bad(in[kFuseWeight], c * kc)) return "fuse_weight must be (C, k*C, 1, 1)";
    if (bad(in[kFuseBias], c)) return "fuse_bias must have C values";
    if (bad(in[kDwWeight], c * 9)) return "dw_weight must be (C, 1, 3, 3)";
    if (bad(in[kPwWeight], c * c)) return "pw_weight must be (C, C, 1, 1)";
    return {};
  }
};

struct AttentionFusion {
  static constexpr char const* kName = "attention_fusion";
  static std::vector<nvinfer1::PluginField> field_names() { return {}; }
  static nvinfer1::IPluginV3* create(nvinfer1::PluginFieldCollection const*) { return new AttentionFusionPlugin(); }
};

}  // namespace

nvinfer1::IPluginCreatorV3One* attention_fusion_creator() noexcept {
  static Creator<AttentionFusion> creator;
  return &creator;
}

}  // namespace deblur::trt
