// Oracle: mergekit (the field's reference) merges the same tiny random Llama
// models; our task_arithmetic and ties (per-tensor trim) must match within fp
// tolerance. Needs BITMERGE_TEST_PYTHON (the .venv with transformers + mergekit).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/core/fileio.hpp"
#include "merging/api.hpp"

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
