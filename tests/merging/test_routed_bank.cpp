// RoutedBank (merging/routed_bank.hpp): routed variants rebuilt in place from
// inputs held in memory equal the Merger's merge of the same spec and route,
// bitwise, for onebit (paper positions: packed and dense parts mixed) and
// routing, including an expert with an added vocabulary row; bad specs are
// one-line errors. The CUDA cases run where a GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "kernels/onebit.hpp"
#include "merging/api.hpp"
#include "merging/routed_bank.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;
using namespace bm::test;

namespace {

class Bank : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir("bank");
    auto c = tiny_config(/*vocab=*/40, /*hidden=*/16, /*inter=*/48, /*layers=*/2);
    c.head_dim = 8;
    write_tiny_model(dir + "/base", c, random_tensors(1));
    write_tiny_model(dir + "/chat", c, random_tensors(1, 1.0, random_tensors(11, 0.1)));
    write_tiny_model(dir + "/math", c, random_tensors(1, 1.0, random_tensors(12, 0.1)));
    auto c41 = c;
    c41.vocab_size = 41;  // an added token, as a real code expert may have
    write_tiny_model(dir + "/code", c41, [&](const std::string& n, const std::vector<int64_t>& s) {
      auto t = random_tensors(13, 0.1)(n, s);
      if (s.size() == 2 && s[0] == 41) return torch::cat({random_tensors(1)(n, {40, s[1]}), torch::randn({1, s[1]})}) + t;
      return random_tensors(1)(n, s) + t;
    });
  }
  void TearDown() override { remove_tree(dir); }
  MergeSpec spec(const std::string& method, const std::string& device = "cpu") {
    MergeSpec s;
    s.method = method;
    s.base = dir + "/base";
    s.device = device;
    for (std::string e : {"chat", "math", "code"}) s.experts.push_back({e, dir + "/" + e, std::nullopt});
    return s;
  }
  void expect_equal_to_merger(const std::string& method, const std::string& device, const std::string& place) {
    auto s = spec(method, device);
    RoutedBank bank(s, place);
    EXPECT_GT(bank.bytes(), 0);
    // live weights, as an engine holds them, overwritten route after route
    std::map<std::string, torch::Tensor> live;
    for (auto& n : bank.names())
      live[n] = torch::zeros(Checkpoint::open(dir + "/base")->info(n).shape,
                             torch::TensorOptions().device(s.device == "cuda" ? torch::kCUDA : torch::kCPU));
    for (std::string route : {"math", "code", "chat", "math"}) {
      bank.materialize(route, live);
      s.route = route;
      auto ref = merge_in_memory(s);
      for (auto& [n, t] : ref)
        EXPECT_TRUE(torch::equal(live.at(n).cpu(), t.cpu())) << method << " route " << route << " tensor " << n;
    }
  }
  std::string dir;
};

TEST_F(Bank, OneBitEqualsTheMergerForEveryRoute) { expect_equal_to_merger("onebit", "cpu", "device"); }
TEST_F(Bank, RoutingEqualsTheMergerForEveryRoute) { expect_equal_to_merger("routing", "cpu", "device"); }

TEST_F(Bank, HoldsPackedDeltasAtCompressedPositions) {
  // onebit at paper positions: chat mlp, math/code attention packed (1/32 of
  // fp32), everything else dense; the estimate from headers matches.
  auto s = spec("onebit");
  RoutedBank bank(s);
  const int64_t est = routed_bank_bytes(s);
  EXPECT_NEAR(static_cast<double>(bank.bytes()), static_cast<double>(est), 0.01 * static_cast<double>(est));
  int64_t full = 0;
  auto base = Checkpoint::open(dir + "/base");
  for (auto& n : base->names()) full += base->info(n).numel() * 4;
  EXPECT_LT(bank.bytes(), 4 * full) << "base + 3 dense experts would be 4x the model";
  EXPECT_GT(bank.bytes(), 2 * full) << "dense parts and the base are held in full";
}

TEST_F(Bank, BadSpecsAreOneLineErrors) {
  auto s = spec("ties");
  try {
    RoutedBank b(s);
    FAIL() << "ties accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("routing or onebit"), std::string::npos) << e.what();
  }
  auto o = spec("onebit");
  RoutedBank bank(o);
  std::map<std::string, torch::Tensor> live;
  try {
    bank.tensor("coder", "model.norm.weight");
    FAIL() << "unknown route accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("code"), std::string::npos) << "suggests the closest name: " << e.what();
  }
  o.params["trim"] = "global";
  o.params["density"] = "0.5";
  EXPECT_THROW(RoutedBank g(o), Error);
}

TEST_F(Bank, CudaEqualsTheCudaMerger) {
  if (!kernels::cuda_kernels_built() || !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_equal_to_merger("onebit", "cuda", "device");
  expect_equal_to_merger("onebit", "cuda", "host");
  expect_equal_to_merger("routing", "cuda", "device");
}

}  // namespace
