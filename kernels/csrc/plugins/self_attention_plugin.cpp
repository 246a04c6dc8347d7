// deblur::self_attention (q, k, v; attribute `scale`) -> out = v · softmax(scale · qᵀk)ᵀ.
// q (B, D, N), k (B, D, M), v (B, Dv, M) -> out (B, Dv, N); dynamic B, N, M. `scale` is serialised
// with the engine (the plugin field of the same name).
#include <cmath>
#include <string>

#include "plugin_base.h"
#include "plugins.h"

namespace deblur::trt {
namespace {

class SelfAttentionPlugin final : public PluginBase {
 public:
  explicit SelfAttentionPlugin(float scale) : PluginBase("self_attention", 3, 1), scale_(scale) {
    fields_.emplace_back("scale", &scale_, nvinfer1::PluginFieldType::kFLOAT32, 1);
  }

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new SelfAttentionPlugin(scale_);
    } catch (...) {
      return nullptr;
    }
  }

  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t n_inputs, nvinfer1::DimsExprs const*, int32_t,
                          nvinfer1::DimsExprs* outputs, int32_t n_outputs, nvinfer1::IExprBuilder&) noexcept override {
    if (n_inputs != 3 || n_outputs != 1 || inputs[0].nbDims != 3 || inputs[2].nbDims != 3) return -1;
    outputs[0].nbDims = 3;
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = inputs[2].d[1];
    outputs[0].d[2] = inputs[0].d[2];
    return 0;
  }

  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc, nvinfer1::PluginTensorDesc const*,
                  void const* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept override {
    DType dtype{};
    nvinfer1::Dims const& q = input_desc[0].dims;
    nvinfer1::Dims const& k = input_desc[1].dims;
    nvinfer1::Dims const& v = input_desc[2].dims;
    if (!to_dtype(input_desc[0].type, dtype) || q.nbDims != 3 || k.nbDims != 3 || v.nbDims != 3) return -1;
    return launch_result(self_attention(dtype, inputs[0], inputs[1], inputs[2], outputs[0], scale_,
                                        static_cast<int>(q.d[0]), static_cast<int>(q.d[1]), static_cast<int>(v.d[1]),
                                        static_cast<int>(q.d[2]), static_cast<int>(k.d[2]), stream));
  }

 protected:
  std::string check_shapes(nvinfer1::Dims const* in) const noexcept override {
    nvinfer1::Dims const& q = in[0];
    nvinfer1::Dims const& k = in[1];
    nvinfer1::Dims const& v = in[2];
    if (q.nbDims != 3 || k.nbDims != 3 || v.nbDims != 3) return "q, k and v must be (B, C, N)";
    auto differ = [](int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; };
    if (differ(q.d[0], k.d[0]) || differ(q.d[0], v.d[0])) return "q, k and v must have the same batch";
    if (differ(q.d[1], k.d[1])) return "q and k must have the same channel count";
    if (differ(k.d[2], v.d[2])) return "k and v must have the same token count";
    return {};
  }

 private:
  float scale_;
};

struct SelfAttention {
  static constexpr char const* kName = "self_attention";
  static std::vector<nvinfer1::PluginField> field_names() {
    return {nvinfer1::PluginField("scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1)};
  }
  static nvinfer1::IPluginV3* create(nvinfer1::PluginFieldCollection const* fc) {
    float scale = 0.0f;
    if (!read_float_field(fc, "scale", scale) || !std::isfinite(scale)) {
      log_error("deblur::self_attention: needs a finite float attribute 'scale' (kernels/onnx_ops.py writes it)");
      return nullptr;
    }
    return new SelfAttentionPlugin(scale);
  }
};

}  // namespace

nvinfer1::IPluginCreatorV3One* self_attention_creator() noexcept {
  static Creator<SelfAttention> creator;
  return &creator;
}

}  // namespace deblur::trt
