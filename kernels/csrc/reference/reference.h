// Plain host C++ references of the CUDA kernels' math, float32 in and out.
//
// They accumulate in double, so they are the truth that both the CUDA kernels (float32 accumulation)
// and, through the CTest fixtures, the PyTorch references (kernels/*.py) are compared with.
#pragma once

#include <vector>

namespace deblur::reference {

// x: (batch, channels, pixels); weight (channels, channels); bias (channels). Returns y; fills map.
std::vector<float> pixel_attention(std::vector<float> const& x, std::vector<float> const& weight,
                                   std::vector<float> const& bias, int batch, int channels, int pixels,
                                   std::vector<float>* attention_map);

std::vector<float> attention_fusion(std::vector<float> const& maps, std::vector<float> const& fuse_weight,
                                    std::vector<float> const& fuse_bias, std::vector<float> const& dw_weight,
                                    std::vector<float> const& pw_weight, std::vector<float> const& features,
                                    int batch, int map_channels, int channels, int height, int width);

std::vector<float> self_attention(std::vector<float> const& q, std::vector<float> const& k,
                                  std::vector<float> const& v, float scale, int batch, int qk_channels,
                                  int v_channels, int n_queries, int n_keys);

}  // namespace deblur::reference
