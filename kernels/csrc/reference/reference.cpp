#include "reference.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace deblur::reference {
namespace {

void expect_size(std::vector<float> const& t, std::size_t n, char const* what) {
  if (t.size() != n) {
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(n) + " values, got " +
                                std::to_string(t.size()));
  }
}

// out[b, co, p] = bias[co] + sum_ci weight[co, ci] * in[b, ci, p]
std::vector<double> conv1x1(std::vector<double> const& in, std::vector<float> const& weight, float const* bias,
                            int batch, int in_channels, int out_channels, int pixels) {
  std::vector<double> out(static_cast<std::size_t>(batch) * out_channels * pixels, 0.0);
  for (int b = 0; b < batch; ++b) {
    for (int co = 0; co < out_channels; ++co) {
      double* o = &out[(static_cast<std::size_t>(b) * out_channels + co) * pixels];
      std::fill(o, o + pixels, bias ? static_cast<double>(bias[co]) : 0.0);
      for (int ci = 0; ci < in_channels; ++ci) {
        double const w = weight[static_cast<std::size_t>(co) * in_channels + ci];
        double const* x = &in[(static_cast<std::size_t>(b) * in_channels + ci) * pixels];
        for (int p = 0; p < pixels; ++p) o[p] += w * x[p];
      }
    }
  }
  return out;
}

std::vector<double> widen(std::vector<float> const& t) { return {t.begin(), t.end()}; }

}  // namespace

std::vector<float> pixel_attention(std::vector<float> const& x, std::vector<float> const& weight,
                                   std::vector<float> const& bias, int batch, int channels, int pixels,
                                   std::vector<float>* attention_map) {
  std::size_t const n = static_cast<std::size_t>(batch) * channels * pixels;
  expect_size(x, n, "pixel_attention x");
  expect_size(weight, static_cast<std::size_t>(channels) * channels, "pixel_attention weight");
  expect_size(bias, channels, "pixel_attention bias");
  std::vector<double> const logits = conv1x1(widen(x), weight, bias.data(), batch, channels, channels, pixels);
  std::vector<float> y(n);
  if (attention_map) attention_map->assign(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    double const gate = 1.0 / (1.0 + std::exp(-logits[i]));
    y[i] = static_cast<float>(x[i] * gate);
    if (attention_map) (*attention_map)[i] = static_cast<float>(gate);
  }
  return y;
}

std::vector<float> attention_fusion(std::vector<float> const& maps, std::vector<float> const& fuse_weight,
                                    std::vector<float> const& fuse_bias, std::vector<float> const& dw_weight,
                                    std::vector<float> const& pw_weight, std::vector<float> const& features,
                                    int batch, int map_channels, int channels, int height, int width) {
  int const pixels = height * width;
  expect_size(maps, static_cast<std::size_t>(batch) * map_channels * pixels, "attention_fusion maps");
  expect_size(fuse_weight, static_cast<std::size_t>(channels) * map_channels, "attention_fusion fuse_weight");
  expect_size(fuse_bias, channels, "attention_fusion fuse_bias");
  expect_size(dw_weight, static_cast<std::size_t>(channels) * 9, "attention_fusion dw_weight");
  expect_size(pw_weight, static_cast<std::size_t>(channels) * channels, "attention_fusion pw_weight");
  expect_size(features, static_cast<std::size_t>(batch) * channels * pixels, "attention_fusion features");

  std::vector<double> const fused =
      conv1x1(widen(maps), fuse_weight, fuse_bias.data(), batch, map_channels, channels, pixels);
  std::vector<double> depthwise(fused.size(), 0.0);
  for (int bc = 0; bc < batch * channels; ++bc) {
    int const c = bc % channels;
    double const* in = &fused[static_cast<std::size_t>(bc) * pixels];
    double* out = &depthwise[static_cast<std::size_t>(bc) * pixels];
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        double acc = 0.0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            int const yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= height || xx < 0 || xx >= width) continue;  // zero padding
            acc += dw_weight[static_cast<std::size_t>(c) * 9 + (dy + 1) * 3 + (dx + 1)] * in[yy * width + xx];
          }
        }
        out[y * width + x] = acc;
      }
    }
  }
  std::vector<double> const refined = conv1x1(depthwise, pw_weight, nullptr, batch, channels, channels, pixels);
  std::vector<float> out(features.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(features[i] * refined[i]);
  return out;
}

std::vector<float> self_attention(std::vector<float> const& q, std::vector<float> const& k,
                                  std::vector<float> const& v, float scale, int batch, int qk_channels,
                                  int v_channels, int n_queries, int n_keys) {
  expect_size(q, static_cast<std::size_t>(batch) * qk_channels * n_queries, "self_attention q");
  expect_size(k, static_cast<std::size_t>(batch) * qk_channels * n_keys, "self_attention k");
  expect_size(v, static_cast<std::size_t>(batch) * v_channels * n_keys, "self_attention v");
  std::vector<float> out(static_cast<std::size_t>(batch) * v_channels * n_queries);
  std::vector<double> scores(n_keys);
  for (int b = 0; b < batch; ++b) {
    float const* qb = &q[static_cast<std::size_t>(b) * qk_channels * n_queries];
    float const* kb = &k[static_cast<std::size_t>(b) * qk_channels * n_keys];
    float const* vb = &v[static_cast<std::size_t>(b) * v_channels * n_keys];
    float* ob = &out[static_cast<std::size_t>(b) * v_channels * n_queries];
    for (int n = 0; n < n_queries; ++n) {
      double top = -INFINITY;
      for (int m = 0; m < n_keys; ++m) {
        double s = 0.0;
        for (int d = 0; d < qk_channels; ++d) {
          s += static_cast<double>(qb[static_cast<std::size_t>(d) * n_queries + n]) * kb[static_cast<std::size_t>(d) * n_keys + m];
        }
        scores[m] = s * scale;
        top = std::max(top, scores[m]);
      }
      double total = 0.0;
      for (int m = 0; m < n_keys; ++m) total += (scores[m] = std::exp(scores[m] - top));
      for (int c = 0; c < v_channels; ++c) {
        double acc = 0.0;
        for (int m = 0; m < n_keys; ++m) acc += scores[m] * vb[static_cast<std::size_t>(c) * n_keys + m];
        ob[static_cast<std::size_t>(c) * n_queries + n] = static_cast<float>(acc / total);
      }
    }
  }
  return out;
}

}  // namespace deblur::reference
