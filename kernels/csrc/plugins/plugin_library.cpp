// The plugin library's entry points for IPluginRegistry::loadLibrary (Python:
// tensorrt.get_plugin_registry().load_library(path); trtexec --dynamicPlugins / --staticPlugins).
#include <NvInferRuntime.h>

#include "plugin_base.h"
#include "plugins.h"

extern "C" {

__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  deblur::trt::set_logger_finder(finder);
}

__attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  static nvinfer1::IPluginCreatorInterface* const creators[] = {
      deblur::trt::pixel_attention_creator(),
      deblur::trt::pixel_attention_map_creator(),
      deblur::trt::attention_fusion_creator(),
      deblur::trt::self_attention_creator(),
  };
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}

}  // extern "C"
