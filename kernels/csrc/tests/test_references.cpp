// CTest: the host C++ references against the PyTorch references' outputs (fixtures), float32,
// within 1e-5 absolute. Usage: deblur_test_references FIXTURE_DIR
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "fixtures.h"
#include "reference.h"

namespace {

constexpr double kTolerance = 1e-5;

using deblur::testing::max_abs_error;
using deblur::testing::read_tensor;

bool report(std::string const& what, double error) {
  bool const ok = error <= kTolerance;
  std::printf("%-34s max |C++ - PyTorch| = %.3g %s\n", what.c_str(), error, ok ? "ok" : "FAIL (> 1e-5)");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
    return 2;
  }
  std::string const root = argv[1];
  std::ifstream cases(root + "/cases.txt");
  if (!cases) {
    std::fprintf(stderr, "no %s/cases.txt: the deblur_fixtures test writes it\n", root.c_str());
    return 1;
  }
  bool ok = true;
  int count = 0;
  std::string line;
  try {
    while (std::getline(cases, line)) {
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string op, name;
      fields >> op >> name;
      std::string const dir = root + "/" + name + "/";
      auto load = [&](char const* tensor) { return read_tensor(dir + tensor + ".bin").values; };
      ++count;
      if (op == "pixel_attention") {
        int batch, channels, pixels;
        fields >> batch >> channels >> pixels;
        std::vector<float> map;
        auto const y = deblur::reference::pixel_attention(load("x"), load("weight"), load("bias"), batch, channels,
                                                          pixels, &map);
        ok &= report(name + " y", max_abs_error(y, load("y")));
        ok &= report(name + " map", max_abs_error(map, load("map")));
      } else if (op == "attention_fusion") {
        int batch, map_channels, channels, height, width;
        fields >> batch >> map_channels >> channels >> height >> width;
        auto const out = deblur::reference::attention_fusion(load("maps"), load("fuse_weight"), load("fuse_bias"),
                                                             load("dw_weight"), load("pw_weight"), load("features"),
                                                             batch, map_channels, channels, height, width);
        ok &= report(name + " out", max_abs_error(out, load("out")));
      } else if (op == "self_attention") {
        int batch, qk, v, n, m;
        float scale;
        fields >> batch >> qk >> v >> n >> m >> scale;
        auto const out = deblur::reference::self_attention(load("q"), load("k"), load("v"), scale, batch, qk, v, n, m);
        ok &= report(name + " out", max_abs_error(out, load("out")));
      } else {
        std::fprintf(stderr, "unknown op %s in cases.txt\n", op.c_str());
        return 1;
      }
      if (fields.fail()) {
        std::fprintf(stderr, "bad line in cases.txt: %s\n", line.c_str());
        return 1;
      }
    }
  } catch (std::exception const& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  if (count == 0) {
    std::fprintf(stderr, "cases.txt lists no cases\n");
    return 1;
  }
  std::printf("%d cases, %s\n", count, ok ? "all within 1e-5" : "FAILED");
  return ok ? 0 : 1;
}
