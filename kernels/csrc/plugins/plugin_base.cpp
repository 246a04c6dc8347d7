#include "plugin_base.h"

#include <atomic>
#include <cstdio>
#include <cstring>

namespace deblur::trt {
namespace {
std::atomic<nvinfer1::ILoggerFinder*> g_logger_finder{nullptr};
}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_logger_finder.store(finder); }

void log_error(std::string const& message) noexcept {
  nvinfer1::ILoggerFinder* finder = g_logger_finder.load();
  nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, message.c_str());
  } else {
    std::fprintf(stderr, "[deblur_trt_plugins] %s\n", message.c_str());
  }
}

bool to_dtype(nvinfer1::DataType type, DType& out) noexcept {
  if (type == nvinfer1::DataType::kFLOAT) {
    out = DType::kFloat32;
    return true;
  }
  if (type == nvinfer1::DataType::kHALF) {
    out = DType::kFloat16;
    return true;
  }
  return false;
}

int64_t volume(nvinfer1::Dims const& dims) noexcept {
  int64_t n = 1;
  for (int32_t i = 0; i < dims.nbDims; ++i) {
    if (dims.d[i] < 0) return -1;
    n *= dims.d[i];
  }
  return n;
}

nvinfer1::IPluginCapability* PluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
  }
  return nullptr;
}

bool PluginBase::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out,
                                           int32_t n_inputs, int32_t n_outputs) noexcept {
  if (pos < 0 || pos >= n_inputs + n_outputs) return false;
  nvinfer1::PluginTensorDesc const& desc = in_out[pos].desc;
  DType dtype{};
  if (desc.format != nvinfer1::TensorFormat::kLINEAR || !to_dtype(desc.type, dtype)) return false;
  return pos == 0 || desc.type == in_out[0].desc.type;  // one type for every tensor
}

int32_t PluginBase::getOutputDataTypes(nvinfer1::DataType* output_types, int32_t n_outputs,
                                       nvinfer1::DataType const* input_types, int32_t n_inputs) const noexcept {
  if (n_inputs != n_inputs_ || n_outputs != n_outputs_) return -1;
  DType dtype{};
  if (!to_dtype(input_types[0], dtype)) {
    log_error(std::string("deblur::") + plugin_name_ + " takes FP16 or FP32 tensors");
    return -1;
  }
  for (int32_t i = 0; i < n_outputs; ++i) output_types[i] = input_types[0];
  return 0;
}

int32_t PluginBase::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t n_inputs,
                                    nvinfer1::DynamicPluginTensorDesc const* /*out*/, int32_t n_outputs) noexcept {
  if (n_inputs != n_inputs_ || n_outputs != n_outputs_) return -1;
  std::vector<nvinfer1::Dims> dims(n_inputs);
  for (int32_t i = 0; i < n_inputs; ++i) dims[i] = in[i].desc.dims;
  std::string const why = check_shapes(dims.data());
  if (!why.empty()) {
    log_error(std::string("deblur::") + plugin_name_ + ": " + why);
    return -1;
  }
  return 0;
}

int32_t PluginBase::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t n_inputs,
                                  nvinfer1::PluginTensorDesc const* /*out*/, int32_t n_outputs) noexcept {
  if (n_inputs != n_inputs_ || n_outputs != n_outputs_) return -1;
  std::vector<nvinfer1::Dims> dims(n_inputs);
  for (int32_t i = 0; i < n_inputs; ++i) dims[i] = in[i].dims;
  std::string const why = check_shapes(dims.data());
  if (!why.empty()) {
    log_error(std::string("deblur::") + plugin_name_ + ": " + why);
    return -1;
  }
  return 0;
}

int32_t PluginBase::launch_result(cudaError_t status) const noexcept {
  if (status == cudaSuccess) return 0;
  log_error(std::string("deblur::") + plugin_name_ + ": " + cudaGetErrorString(status));
  return -1;
}

nvinfer1::IPluginV3* PluginBase::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
  return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* PluginBase::getFieldsToSerialize() noexcept {
  field_collection_.nbFields = static_cast<int32_t>(fields_.size());
  field_collection_.fields = fields_.empty() ? nullptr : fields_.data();
  return &field_collection_;
}

bool read_float_field(nvinfer1::PluginFieldCollection const* fc, char const* name, float& value) noexcept {
  if (fc == nullptr) return false;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    if (f.name == nullptr || std::strcmp(f.name, name) != 0 || f.data == nullptr || f.length != 1) continue;
    if (f.type == nvinfer1::PluginFieldType::kFLOAT32) {
      value = *static_cast<float const*>(f.data);
      return true;
    }
    if (f.type == nvinfer1::PluginFieldType::kFLOAT64) {
      value = static_cast<float>(*static_cast<double const*>(f.data));
      return true;
    }
  }
  return false;
}

}  // namespace deblur::trt
