// CUDA kernels of the three fused ops of kernels/ (the same math as the PyTorch references there).
//
// Every tensor is contiguous NCHW (or (B, C, N) for attention), float16 or float32; all tensors of
// one call share that type; arithmetic accumulates in float32. Each function enqueues on `stream`
// and returns the launch status (cudaSuccess or the launch error); it never synchronises.
// Only CUDA 12.x runtime API is used (JetPack 6 ships CUDA 12.6).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace deblur {

enum class DType : int32_t { kFloat32 = 0, kFloat16 = 1 };

// y = x * sigmoid(conv1x1(x, weight, bias)); `attention_map` (may be null) receives the sigmoid map.
// x, y, attention_map: (batch, channels, height*width); weight: (channels, channels); bias: (channels).
cudaError_t pixel_attention(DType dtype, void const* x, void const* weight, void const* bias, void* y,
                            void* attention_map, int batch, int channels, int pixels, cudaStream_t stream);

// out = features * pw(dw3x3(conv1x1(maps, fuse_weight, fuse_bias))), RDAFNet's attention fusion.
// maps: (batch, map_channels, H, W) (the layer's maps concatenated); fuse_weight: (channels, map_channels);
// fuse_bias: (channels); dw_weight: (channels, 3, 3) depthwise, zero padding; pw_weight: (channels, channels);
// features, out: (batch, channels, H, W). `workspace` holds the fused map in float32:
// attention_fusion_workspace_bytes(...) bytes.
cudaError_t attention_fusion(DType dtype, void const* maps, void const* fuse_weight, void const* fuse_bias,
                             void const* dw_weight, void const* pw_weight, void const* features, void* out,
                             void* workspace, int batch, int map_channels, int channels, int height, int width,
                             cudaStream_t stream);
std::size_t attention_fusion_workspace_bytes(int batch, int channels, int height, int width);

// out = v · softmax(scale · qᵀk)ᵀ with tokens on the last axis: q (batch, qk_channels, n_queries),
// k (batch, qk_channels, n_keys), v (batch, v_channels, n_keys) -> out (batch, v_channels, n_queries).
cudaError_t self_attention(DType dtype, void const* q, void const* k, void const* v, void* out, float scale,
                           int batch, int qk_channels, int v_channels, int n_queries, int n_keys,
                           cudaStream_t stream);

}  // namespace deblur
