// Reading the CTest fixtures written by make_fixtures.py (int32 rank, int32 dims, float32 values).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace deblur::testing {

struct Tensor {
  std::vector<int32_t> shape;
  std::vector<float> values;
};

inline Tensor read_tensor(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open fixture " + path + " (run the deblur_fixtures test first)");
  int32_t rank = 0;
  in.read(reinterpret_cast<char*>(&rank), sizeof rank);
  if (!in || rank < 1 || rank > 8) throw std::runtime_error(path + ": bad rank");
  Tensor t;
  t.shape.resize(rank);
  in.read(reinterpret_cast<char*>(t.shape.data()), sizeof(int32_t) * rank);
  std::size_t count = 1;
  for (int32_t d : t.shape) count *= static_cast<std::size_t>(d);
  t.values.resize(count);
  in.read(reinterpret_cast<char*>(t.values.data()), static_cast<std::streamsize>(sizeof(float) * count));
  if (!in) throw std::runtime_error(path + ": truncated");
  return t;
}

// Largest |a - b| (NaN counts as infinitely far); throws on a size mismatch.
inline double max_abs_error(std::vector<float> const& a, std::vector<float> const& b) {
  if (a.size() != b.size()) {
    throw std::runtime_error("size mismatch: " + std::to_string(a.size()) + " vs " + std::to_string(b.size()));
  }
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    double const e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;
  }
  return worst;
}

}  // namespace deblur::testing
