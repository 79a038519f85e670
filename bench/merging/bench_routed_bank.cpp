// Routed variants on the GPU: how long 1bit-Merging / Routing take to switch
// the route when the inputs are held by a RoutedBank (merging/routed_bank.hpp)
// versus reading the inputs again (the issue's target: "built from the base
// plus packed deltas on the GPU in milliseconds, not reloaded from disk").
//   bench_routed_bank DIR [--method onebit|routing] [--device cuda] [--place device|host] [--dtype bfloat16]
// DIR as written by `bench_merging_stream gen` (base/, e1/, e2/, e3/): experts
// e1, e2, e3 take the paper's positions of chat (mlp), math and code (attention).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/arch.hpp"
#include "merging/routed_bank.hpp"

using namespace bm;
using Clock = std::chrono::steady_clock;

static std::string arg(int argc, char** argv, const std::string& key, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (key == argv[i]) return argv[i + 1];
  return def;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_routed_bank DIR [--method onebit|routing] [--device cuda|cpu] [--place device|host]\n";
    return 2;
  }
  try {
    const std::string dir = argv[1];
    merging::MergeSpec spec;
    spec.method = arg(argc, argv, "--method", "onebit");
    spec.device = arg(argc, argv, "--device", "cuda");
    spec.base = dir + "/base";
    const char* pos[] = {"mlp", "attention", "attention"};
    for (int k = 1; k <= 3; ++k) {
      merging::ExpertSpec e{"e" + std::to_string(k), dir + "/e" + std::to_string(k), std::nullopt};
      if (spec.method == "onebit") e.compress = parse_position(pos[k - 1], "bench");
      spec.experts.push_back(e);
    }
    const std::string place = arg(argc, argv, "--place", "device");
    const bool cuda = spec.device == "cuda";
    auto sync = [&] {
      if (cuda) torch::cuda::synchronize();
    };
    auto secs = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
    const int64_t est = merging::routed_bank_bytes(spec);
    auto t0 = Clock::now();
    merging::RoutedBank bank(spec, place);
    sync();
    const double build_s = secs(t0);
    // The live model's weights, bf16 on the device, as the engine holds them.
    torch::Device dev(cuda ? torch::kCUDA : torch::kCPU);
    std::map<std::string, torch::Tensor> live;
    int64_t live_bytes = 0;
    for (auto& n : bank.names()) {
      live[n] = bank.tensor("e1", n).to(dev, torch::kBFloat16);
      live_bytes += live[n].numel() * 2;
    }
    sync();
    std::printf("bank: %s, %s, inputs held on %s: %.2f GB (estimate %.2f GB); built in %.2f s (reads base + 3 experts once); live model %.2f GB\n",
                spec.method.c_str(), spec.device.c_str(), place.c_str(), bank.bytes() / 1e9, est / 1e9, build_s,
                live_bytes / 1e9);
    double best = 1e9, sum = 0;
    int n = 0;
    for (int rep = 0; rep < 2; ++rep)
      for (std::string r : {"e2", "e3", "e1"}) {
        auto t = Clock::now();
        bank.materialize(r, live);
        sync();
        double s = secs(t);
        best = std::min(best, s);
        sum += s;
        ++n;
        std::printf("route -> %s: %.1f ms (%.0f GB/s of live weights written)\n", r.c_str(), 1e3 * s, live_bytes / 1e9 / s);
      }
    std::printf("route switch: best %.1f ms, mean %.1f ms over %d switches; build from inputs once: %.2f s\n", 1e3 * best,
                1e3 * sum / n, n, build_s);
  } catch (const std::exception& e) {
    std::cerr << "bench_routed_bank: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
