// What the three deblur plugins share: the IPluginV3 capability plumbing, the type/format rules
// (every tensor LINEAR, all FP16 or all FP32), and a creator template.
//
// Written against TensorRT 10.3's headers (JetPack 6) and compiled against 11.x's too. Names,
// version and namespace are what kernels/onnx_ops.py writes into a fused ONNX: op_type = plugin
// name, plugin_namespace = "deblur", no plugin_version attribute (the parser's default is "1").
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "deblur/kernels.h"

namespace deblur::trt {

inline constexpr char const* kNamespace = "deblur";
inline constexpr char const* kVersion = "1";

// Log through the logger TensorRT handed to the library (setLoggerFinder), else stderr.
void log_error(std::string const& message) noexcept;
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;

// The kernels' dtype for a TensorRT type; false for a type the plugins do not take.
bool to_dtype(nvinfer1::DataType type, DType& out) noexcept;

// Number of elements of `dims`, or -1 if any dimension is negative (not yet known).
int64_t volume(nvinfer1::Dims const& dims) noexcept;

class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  PluginBase(char const* plugin_name, int32_t n_inputs, int32_t n_outputs)
      : plugin_name_(plugin_name), n_inputs_(n_inputs), n_outputs_(n_outputs) {}
  ~PluginBase() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return plugin_name_; }
  char const* getPluginVersion() const noexcept override { return kVersion; }
  char const* getPluginNamespace() const noexcept override { return kNamespace; }

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return n_outputs_; }
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out, int32_t n_inputs,
                                 int32_t n_outputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* output_types, int32_t n_outputs,
                             nvinfer1::DataType const* input_types, int32_t n_inputs) const noexcept override;
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t n_inputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t n_outputs) noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t n_inputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t n_outputs) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 protected:
  // Shape rules of the op on static (or -1) dims; an empty string means consistent.
  virtual std::string check_shapes(nvinfer1::Dims const* inputs) const noexcept = 0;
  // enqueue's return value for a kernel launch status: 0, or -1 after logging the CUDA error.
  int32_t launch_result(cudaError_t status) const noexcept;
  // The fields that re-create this plugin at run time (none by default).
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection field_collection_{};

 private:
  char const* plugin_name_;
  int32_t n_inputs_;
  int32_t n_outputs_;
};

// Reads a float attribute (kFLOAT32 or kFLOAT64, one value) from a field collection.
bool read_float_field(nvinfer1::PluginFieldCollection const* fc, char const* name, float& value) noexcept;

// A creator for plugin class P, which provides: static constexpr char const* kName;
// static std::vector<nvinfer1::PluginField> field_names(); static P* create(PluginFieldCollection const*).
template <typename P>
class Creator : public nvinfer1::IPluginCreatorV3One {
 public:
  Creator() : names_(P::field_names()) {
    collection_.nbFields = static_cast<int32_t>(names_.size());
    collection_.fields = names_.data();
  }
  nvinfer1::IPluginV3* createPlugin(char const* /*name*/, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase /*phase*/) noexcept override {
    try {
      return P::create(fc);
    } catch (...) {
      log_error(std::string("deblur::") + P::kName + ": could not create the plugin");
      return nullptr;
    }
  }
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &collection_; }
  char const* getPluginName() const noexcept override { return P::kName; }
  char const* getPluginVersion() const noexcept override { return kVersion; }
  char const* getPluginNamespace() const noexcept override { return kNamespace; }

 private:
  std::vector<nvinfer1::PluginField> names_;
  nvinfer1::PluginFieldCollection collection_{};
};

}  // namespace deblur::trt
