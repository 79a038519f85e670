// --device cuda merges (whole tensors on the GPU, inputs uploaded ahead by
// merging/gpu_feed.hpp) equal the CPU merges (row-chunked and whole) for
// every method, with TIES cuts falling on ties; density 0.5 keeps exactly
// half of each tensor on the GPU too; out-of-order requests and the
// streamed model dir (pinned output) agree. Skipped without a CUDA device.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "harness/core/fileio.hpp"
#include "kernels/onebit.hpp"
#include "merging/api.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;
using namespace bm::test;

namespace {

bool have_cuda() { return kernels::cuda_kernels_built() && torch::cuda::is_available(); }

std::map<std::string, torch::Tensor> run(MergeSpec spec, const std::string& device, const char* chunk = nullptr) {
  spec.device = device;
  if (chunk)
    setenv("BITMERGE_MERGE_CHUNK_BYTES", chunk, 1);
  else
    unsetenv("BITMERGE_MERGE_CHUNK_BYTES");
  auto out = merge_in_memory(spec);
  unsetenv("BITMERGE_MERGE_CHUNK_BYTES");
  return out;
}

class CudaMerge : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA kernels or no CUDA device; run on the GPU machine";
    dir = temp_dir("cuda");
    auto c = tiny_config(/*vocab=*/40, /*hidden=*/16, /*inter=*/48, /*layers=*/2);
    c.head_dim = 8;
    // Base on a 1/64 grid, deltas from {-3..3}/4: |delta| has many exact ties.
    MakeTensor qbase = [](const std::string& n, const std::vector<int64_t>& s) {
      torch::manual_seed(1 + std::hash<std::string>{}(n) % 1000);
      return (torch::randn(s) * 64).round() / 64;
    };
    auto on_base = [&](uint64_t seed) -> MakeTensor {
      return [=](const std::string& n, const std::vector<int64_t>& s) {
        torch::manual_seed(seed + std::hash<std::string>{}(n) % 1000);
        return qbase(n, s) + torch::randint(-3, 4, s).to(torch::kFloat32) * 0.25;
      };
    };
    write_tiny_model(dir + "/base", c, qbase);
    write_tiny_model(dir + "/chat", c, on_base(11));
    write_tiny_model(dir + "/math", c, on_base(12));
    write_tiny_model(dir + "/code", c, on_base(13));
  }
  void TearDown() override {
    if (!dir.empty()) remove_tree(dir);
  }
  MergeSpec spec(const std::string& method, std::map<std::string, std::string> params, const std::string& route = "") {
    MergeSpec s;
    s.method = method;
    s.base = dir + "/base";
    s.experts = {{"chat", dir + "/chat", std::nullopt}, {"math", dir + "/math", std::nullopt},
                 {"code", dir + "/code", std::nullopt}};
    s.params = std::move(params);
    s.route = route;
    return s;
  }
  std::string dir;
};

}  // namespace

TEST_F(CudaMerge, EqualsCpuForEveryMethod) {
  struct Case {
    std::string method, route;
    std::map<std::string, std::string> params;
    bool exact;  // bit-identical expected (lambda 1, no 1-bit alpha reduction)
  };
  std::vector<Case> cases = {
      {"ties", "", {{"density", "0.3"}}, true},
      {"ties", "", {{"density", "0.5"}, {"math.density", "0.2"}}, true},
      {"ties", "", {{"density", "0.4"}, {"trim", "global"}}, true},
      {"dare", "", {{"density", "0.5"}, {"seed", "7"}}, true},
      {"dare_ties", "", {{"density", "0.3"}, {"seed", "3"}}, true},
      {"task_arithmetic", "", {{"lambda", "0.7"}}, false},
      {"average", "", {}, false},
      {"routing", "code", {}, true},
      {"onebit", "math", {}, false},
      {"onebit", "chat", {{"density", "0.5"}}, false},
      // Draws on the CPU, ranks by a stable sort on either device: same masks; the L1
      // rescale sums on the device (other order), so della is compared within tolerance.
      {"della", "", {{"density", "0.5"}, {"epsilon", "0.2"}, {"seed", "4"}}, false},
      {"della_linear", "", {{"density", "0.4"}, {"epsilon", "0.1"}, {"rescale", "false"}}, true},
      {"breadcrumbs", "", {{"density", "0.5"}, {"gamma", "0.05"}}, true},
      {"breadcrumbs_ties", "", {{"density", "0.6"}, {"gamma", "0.02"}, {"rescale", "true"}}, false},
  };
  for (auto& cs : cases) {
    auto s = spec(cs.method, cs.params, cs.route);
    auto cpu = run(s, "cpu");
    auto cpu_chunked = run(s, "cpu", "96");
    auto gpu = run(s, "cuda");
    ASSERT_EQ(cpu.size(), gpu.size());
    for (auto& [n, t] : cpu) {
      ASSERT_TRUE(gpu.count(n)) << n;
      const auto& g = gpu[n];
      ASSERT_TRUE(g.device().is_cpu()) << n;
      ASSERT_EQ(g.sizes(), t.sizes()) << n;
      std::string what = cs.method + " " + n;
      EXPECT_TRUE(torch::equal(t, cpu_chunked[n])) << what << " (cpu chunked vs whole)";
      if (cs.exact) {
        EXPECT_TRUE(torch::equal(g, t)) << what << ": " << (g != t).sum().item<int64_t>() << " entries differ";
      } else {
        EXPECT_TRUE(torch::allclose(g, t, 1e-5, 1e-6)) << what << ": max diff " << (g - t).abs().max().item<float>();
      }
    }
  }
}

TEST_F(CudaMerge, DensityHalfKeepsExactlyHalfOnTheGpu) {
  auto s = spec("ties", {{"density", "0.5"}});
  s.experts.resize(1);
  auto out = run(s, "cuda");
  auto base = Checkpoint::open(dir + "/base");
  for (auto& n : base->names()) {
    auto kept = (out[n] != base->get(n)).sum().item<int64_t>();
    EXPECT_EQ(kept, base->get(n).numel() / 2) << n;
  }
}

TEST_F(CudaMerge, OutOfOrderRequestsAndStreamedDirAgree) {
  auto s = spec("ties", {{"density", "0.3"}});
  s.device = "cuda";
  auto in_order = run(s, "cuda");
  for (bool streaming : {false, true}) {
    Merger m(s);
    m.set_streaming_output(streaming);  // true: a thread computes ahead, results in pinned memory
    auto names = m.names();
    // Reverse, then a repeat and a skip: the feed restarts where asked.
    for (auto it = names.rbegin(); it != names.rend(); ++it)
      EXPECT_TRUE(torch::equal(m.tensor(*it), in_order[*it])) << "reverse " << *it;
    EXPECT_TRUE(torch::equal(m.tensor(names[2]), in_order[names[2]]));
    EXPECT_TRUE(torch::equal(m.tensor(names[2]), in_order[names[2]]));
    EXPECT_TRUE(torch::equal(m.tensor(names[5]), in_order[names[5]]));
    EXPECT_TRUE(torch::equal(m.tensor(names[6]), in_order[names[6]]));  // in order again
    m.set_route("math");  // stops the thread ahead (ties ignores the route); the next request restarts it
    EXPECT_TRUE(torch::equal(m.tensor(names[7]), in_order[names[7]]));
    EXPECT_NE(m.profile_line().find("cuda merge of"), std::string::npos) << m.profile_line();
  }
  // merge_models on cuda (pinned, reused output buffers) writes the same tensors.
  s.output = dir + "/out";
  merge_models(s);
  auto written = Checkpoint::open(dir + "/out");
  for (auto& [n, t] : in_order) EXPECT_TRUE(torch::equal(written->get(n), t)) << "written " << n;
}
