// Oracle: mergekit (the field's reference) merges the same tiny random Llama
// models; our task_arithmetic, ties (per-tensor trim), breadcrumbs and
// breadcrumbs_ties must match within fp tolerance; della / della_linear are
// compared per tensor given the same random draws (below). Needs BITMERGE_TEST_PYTHON (the .venv with transformers + mergekit).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "merging/api.hpp"
#include "merging/general.hpp"

using namespace bm;
using namespace bm::merging;

class MergekitOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* py = std::getenv("BITMERGE_TEST_PYTHON");
    const char* src = std::getenv("BITMERGE_SOURCE_DIR");
    if (!py || !src || !file_exists(py)) return;
    dir = "/tmp/bm-merging-oracle-" + std::to_string(getpid());
    std::string cmd = std::string(py) + " " + src + "/tests/merging/mergekit_oracle.py " + dir + " >" + dir +
                      ".log 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    if (!dir.empty()) std::system(("rm -rf " + dir + " " + dir + ".log").c_str());
  }
  void SetUp() override {
    if (dir.empty()) GTEST_SKIP() << "BITMERGE_TEST_PYTHON not set";
    ASSERT_TRUE(ok) << "mergekit oracle failed: " << read_text_file(dir + ".log");
  }
  void compare(const MergeSpec& s, const std::string& mk) {
    auto ours = merge_in_memory(s);
    auto theirs = Checkpoint::open(dir + "/" + mk);
    ASSERT_EQ(ours.size(), theirs->names().size());
    auto base = Checkpoint::open(dir + "/base");
    int changed = 0;
    for (auto& [n, t] : ours) {
      ASSERT_TRUE(theirs->has(n)) << n;
      auto want = theirs->get(n);
      EXPECT_TRUE(torch::allclose(t, want, 1e-5, 1e-6)) << n << " max diff " << (t - want).abs().max().item<float>();
      changed += !torch::equal(t, base->get(n));
    }
    EXPECT_GT(changed, 10);  // the merge did something
  }
  static std::string dir;
  static bool ok;
};
std::string MergekitOracle::dir;
bool MergekitOracle::ok = false;

TEST_F(MergekitOracle, TaskArithmetic) {
  MergeSpec s;
  s.method = "task_arithmetic";
  s.base = dir + "/base";
  s.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt}};
  s.params = {{"lambda", "0.7"}, {"e2.weight", "0.5"}};
  compare(s, "mk_task_arithmetic");
}

TEST_F(MergekitOracle, TiesPerTensorTrim) {
  MergeSpec s;
  s.method = "ties";
  s.base = dir + "/base";
  s.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt}};
  s.params = {{"lambda", "0.9"}, {"e1.density", "0.5"}, {"e2.density", "0.3"}, {"e2.weight", "0.7"}, {"trim", "tensor"}};
  compare(s, "mk_ties");
}

// Model Breadcrumbs is deterministic: the same tensors as mergekit's
// breadcrumbs (per-expert density/gamma, lambda) and breadcrumbs_ties (L1 rescale on).
TEST_F(MergekitOracle, Breadcrumbs) {
  MergeSpec s;
  s.method = "breadcrumbs";
  s.base = dir + "/base";
  s.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt}};
  s.params = {{"lambda", "0.8"},     {"e1.density", "0.6"}, {"e1.gamma", "0.05"},
              {"e2.weight", "0.5"}, {"e2.density", "0.4"}, {"e2.gamma", "0.02"}};
  compare(s, "mk_breadcrumbs");
}

TEST_F(MergekitOracle, BreadcrumbsTiesRescaled) {
  MergeSpec s;
  s.method = "breadcrumbs_ties";
  s.base = dir + "/base";
  s.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt}};
  s.params = {{"rescale", "true"},  {"e1.density", "0.5"}, {"e1.gamma", "0.01"},
              {"e2.weight", "0.7"}, {"e2.density", "0.7"}, {"e2.gamma", "0.1"}};
  compare(s, "mk_breadcrumbs_ties");
}

// Whole-tensor methods are never row-chunked: forcing tiny chunks changes nothing.
TEST_F(MergekitOracle, BreadcrumbsIgnoresRowChunks) {
  MergeSpec s;
  s.method = "breadcrumbs";
  s.base = dir + "/base";
  s.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt}};
  s.params = {{"lambda", "0.8"},     {"e1.density", "0.6"}, {"e1.gamma", "0.05"},
              {"e2.weight", "0.5"}, {"e2.density", "0.4"}, {"e2.gamma", "0.02"}};
  setenv("BITMERGE_MERGE_CHUNK_BYTES", "256", 1);
  auto chunked = merge_in_memory(s);
  unsetenv("BITMERGE_MERGE_CHUNK_BYTES");
  auto theirs = Checkpoint::open(dir + "/mk_breadcrumbs");
  for (auto& [n, t] : chunked) EXPECT_TRUE(torch::allclose(t, theirs->get(n), 1e-5, 1e-6)) << n;
}

// DELLA is random: mergekit's della / della_linear run on one tensor with
// torch.bernoulli replaced by our seeded draws (mergekit_della_oracle.py), so
// everything else is compared exactly: the MagPrune probabilities (bit for
// bit), the mask, the L1 rescale, sign election, normalisation and lambda.
namespace {
struct DellaCase {
  std::string method;
  std::map<std::string, std::string> params;  // ours
  nlohmann::json config;                      // mergekit's
};

void della_against_mergekit(const DellaCase& c, const std::vector<int64_t>& shape) {
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  const char* src = std::getenv("BITMERGE_SOURCE_DIR");
  if (!py || !src || !file_exists(py)) GTEST_SKIP() << "BITMERGE_TEST_PYTHON not set";
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  std::vector<std::string> experts{"e1", "e2", "e3"};
  torch::manual_seed(11);
  auto base = torch::randn(shape);
  std::vector<torch::Tensor> full;
  for (size_t k = 0; k < experts.size(); ++k) full.push_back(base + 0.02 * torch::randn(shape));

  const MethodInfo& m = find_method(c.method);
  Params P = resolve_params(m, c.params, experts);
  TensorJob job;
  job.name = name;
  job.role = classify_tensor(name).role;
  job.base = base;
  job.expert_names = experts;
  job.params = &P;
  for (auto& f : full) {
    Delta d;
    d.dense = f - base;
    job.deltas.push_back(d);
  }
  auto ours = m.merge(job);

  std::string tmp = "/tmp/bm-della-oracle-" + std::to_string(getpid());
  nlohmann::json cfg = c.config;
  cfg["method"] = c.method;
  cfg["experts"] = experts;
  std::vector<std::pair<std::string, torch::Tensor>> ts{{"base", base}};
  for (size_t k = 0; k < experts.size(); ++k) {
    ts.push_back({experts[k], full[k]});
    ts.push_back({"draws." + experts[k], seeded_draws(job.deltas[k].dense, P.i("seed"), experts[k], name)});
  }
  {
    SafetensorsWriter w(tmp + ".in.safetensors", {{"config", cfg.dump()}});
    for (auto& [n, t] : ts) w.declare(n, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()));
    for (auto& [n, t] : ts) {
      auto ct = t.contiguous();
      w.write(n, ct.data_ptr(), ct.numel() * 4);
    }
    w.finish();
  }
  std::string cmd = std::string(py) + " " + src + "/tests/merging/mergekit_della_oracle.py " + tmp + ".in.safetensors " +
                    tmp + ".out.safetensors >" + tmp + ".log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text_file(tmp + ".log");
  SafetensorsFile out(tmp + ".out.safetensors");
  auto get = [&](const std::string& n) {
    const TensorInfo& i = out.at(n);
    return torch::from_blob(const_cast<uint8_t*>(out.data(i)), i.shape, torch::kFloat32).clone();
  };
  for (size_t k = 0; k < experts.size(); ++k) {
    double density = P.f("density", experts[k]), eps = P.f("epsilon", experts[k]);
    auto probs = della_probs(job.deltas[k].dense, density, eps);
    EXPECT_TRUE(torch::equal(probs, get("probs." + experts[k]))) << experts[k] << ": MagPrune probabilities differ";
  }
  auto want = get("merged");
  EXPECT_TRUE(torch::allclose(ours, want, 1e-5, 1e-6)) << c.method << " max diff " << (ours - want).abs().max().item<float>();
  EXPECT_FALSE(torch::allclose(ours, base));
  std::system(("rm -f " + tmp + ".in.safetensors " + tmp + ".out.safetensors " + tmp + ".log").c_str());
}
}  // namespace

TEST(MergekitDellaOracle, DellaGivenTheDraws) {
  DellaCase c{"della",
              {{"lambda", "0.9"}, {"seed", "5"}, {"e1.density", "0.4"}, {"e1.epsilon", "0.1"}, {"e2.weight", "0.6"},
               {"e3.density", "0.7"}, {"e3.epsilon", "0.25"}},
              {{"lambda", 0.9},
               {"rescale", true},
               {"weight", {{"e1", 1.0}, {"e2", 0.6}, {"e3", 1.0}}},
               {"density", {{"e1", 0.4}, {"e2", 0.5}, {"e3", 0.7}}},
               {"epsilon", {{"e1", 0.1}, {"e2", 0.15}, {"e3", 0.25}}}}};
  della_against_mergekit(c, {24, 40});
}

TEST(MergekitDellaOracle, DellaLinearGivenTheDrawsOnAVector) {
  DellaCase c{"della_linear",
              {{"seed", "9"}, {"density", "0.3"}, {"epsilon", "0.2"}, {"e2.weight", "0.5"}, {"e3.weight", "1.5"}},
              {{"lambda", 1.0},
               {"rescale", true},
               {"weight", {{"e1", 1.0}, {"e2", 0.5}, {"e3", 1.5}}},
               {"density", {{"e1", 0.3}, {"e2", 0.3}, {"e3", 0.3}}},
               {"epsilon", {{"e1", 0.2}, {"e2", 0.2}, {"e3", 0.2}}}}};
  della_against_mergekit(c, {300});
}

TEST(MergekitDellaOracle, DellaWithoutRescale) {
  DellaCase c{"della",
              {{"rescale", "false"}, {"density", "0.6"}, {"epsilon", "0.3"}},
              {{"lambda", 1.0},
               {"rescale", false},
               {"weight", {{"e1", 1.0}, {"e2", 1.0}, {"e3", 1.0}}},
               {"density", {{"e1", 0.6}, {"e2", 0.6}, {"e3", 0.6}}},
               {"epsilon", {{"e1", 0.3}, {"e2", 0.3}, {"e3", 0.3}}}}};
  della_against_mergekit(c, {16, 64});
}
