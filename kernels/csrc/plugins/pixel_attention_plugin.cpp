// deblur::pixel_attention (x, weight, bias) -> y and deblur::pixel_attention_map -> (y, map):
// y = x * sigmoid(conv1x1(x)). x (B, C, H, W) with dynamic B/H/W; weight (C, C, 1, 1); bias (C).
#include <string>

#include "plugin_base.h"
#include "plugins.h"

namespace deblur::trt {
namespace {

class PixelAttentionPlugin final : public PluginBase {
 public:
  PixelAttentionPlugin(char const* name, bool with_map) : PluginBase(name, 3, with_map ? 2 : 1), with_map_(with_map) {}

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new PixelAttentionPlugin(getPluginName(), with_map_);
    } catch (...) {
      return nullptr;
    }
  }

  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t n_inputs, nvinfer1::DimsExprs const*, int32_t,
                          nvinfer1::DimsExprs* outputs, int32_t n_outputs, nvinfer1::IExprBuilder&) noexcept override {
    if (n_inputs != 3 || n_outputs != getNbOutputs() || inputs[0].nbDims != 4) return -1;
    for (int32_t i = 0; i < n_outputs; ++i) outputs[i] = inputs[0];
    return 0;
  }

  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc, nvinfer1::PluginTensorDesc const*,
                  void const* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept override {
    DType dtype{};
    nvinfer1::Dims const& x = input_desc[0].dims;
    if (!to_dtype(input_desc[0].type, dtype) || x.nbDims != 4) return -1;
    return launch_result(pixel_attention(dtype, inputs[0], inputs[1], inputs[2], outputs[0],
                                         with_map_ ? outputs[1] : nullptr, static_cast<int>(x.d[0]),
                                         static_cast<int>(x.d[1]), static_cast<int>(x.d[2] * x.d[3]), stream));
  }

 protected:
  std::string check_shapes(nvinfer1::Dims const* in) const noexcept override {
    nvinfer1::Dims const& x = in[0];
    nvinfer1::Dims const& w = in[1];
    nvinfer1::Dims const& b = in[2];
    if (x.nbDims != 4) return "x must be (B, C, H, W)";
    int64_t const c = x.d[1];
    if (c < 0) return {};
    if (volume(w) >= 0 && volume(w) != c * c) return "weight must be (C, C, 1, 1) for C = " + std::to_string(c);
    if (volume(b) >= 0 && volume(b) != c) return "bias must have C = " + std::to_string(c) + " values";
    return {};
  }

 private:
  bool with_map_;
};

struct PixelAttention {
  static constexpr char const* kName = "pixel_attention";
  static std::vector<nvinfer1::PluginField> field_names() { return {}; }
  static nvinfer1::IPluginV3* create(nvinfer1::PluginFieldCollection const*) {
    return new PixelAttentionPlugin(kName, false);
  }
};

struct PixelAttentionMap {
  static constexpr char const* kName = "pixel_attention_map";
  static std::vector<nvinfer1::PluginField> field_names() { return {}; }
  static nvinfer1::IPluginV3* create(nvinfer1::PluginFieldCollection const*) {
    return new PixelAttentionPlugin(kName, true);
  }
};

}  // namespace

nvinfer1::IPluginCreatorV3One* pixel_attention_creator() noexcept {
  static Creator<PixelAttention> creator;
  return &creator;
}

nvinfer1::IPluginCreatorV3One* pixel_attention_map_creator() noexcept {
  static Creator<PixelAttentionMap> creator;
  return &creator;
}

}  // namespace deblur::trt
