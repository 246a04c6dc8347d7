// The creators of the library's plugins (one per op of kernels/onnx_ops.py).
#pragma once

#include <NvInferRuntime.h>

namespace deblur::trt {

nvinfer1::IPluginCreatorV3One* pixel_attention_creator() noexcept;
nvinfer1::IPluginCreatorV3One* pixel_attention_map_creator() noexcept;
nvinfer1::IPluginCreatorV3One* attention_fusion_creator() noexcept;
nvinfer1::IPluginCreatorV3One* self_attention_creator() noexcept;

}  // namespace deblur::trt
