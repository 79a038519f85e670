// Compatibility of base and experts (checked before weights are read), vocab
// mismatches, NaN/Inf in deltas.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/core/error.hpp"
#include "merging/api.hpp"
#include "tests/merging/tiny_model.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm;
using namespace bm::merging;

namespace {
using bmtest::error_of;
bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
}  // namespace

class Compat : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("compat");
    cfg = test::tiny_config();
    test::write_tiny_model(dir + "/base", cfg, test::random_tensors(1));
    test::write_tiny_model(dir + "/good", cfg, test::random_tensors(2, 0.1, test::random_tensors(1)));
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  MergeSpec spec(const std::string& expert_dir) {
    MergeSpec s;
    s.method = "task_arithmetic";
    s.base = dir + "/base";
    s.experts = {{"good", dir + "/good", std::nullopt}, {"x", expert_dir, std::nullopt}};
    return s;
  }
  std::string dir;
  ModelConfig cfg;
};

TEST_F(Compat, ShapeMismatchNamesFileAndTensor) {
  auto c2 = test::tiny_config(32, 8, 24, 2);  // other intermediate size
  test::write_tiny_model(dir + "/wide", c2, test::random_tensors(4));
  auto e = error_of([&] { Merger m(spec(dir + "/wide")); });
  EXPECT_TRUE(has(e, dir + "/wide")) << e;
  EXPECT_TRUE(has(e, "intermediate_size")) << e;
}

TEST_F(Compat, ShapeMismatchWithoutConfigDifference) {
  // config says the same, a tensor differs: error names the tensor.
  test::write_tiny_model(dir + "/odd", cfg, [&](const std::string& n, const std::vector<int64_t>& s) {
    if (n == "model.layers.1.mlp.up_proj.weight") return torch::zeros({16, 9});
    return torch::zeros(s);
  });
  auto e = error_of([&] { Merger m(spec(dir + "/odd")); });
  EXPECT_TRUE(has(e, "model.layers.1.mlp.up_proj.weight")) << e;
  EXPECT_TRUE(has(e, dir + "/odd")) << e;
}

TEST_F(Compat, MissingTensorIsAnError) {
  auto c1 = test::tiny_config(32, 8, 16, 1);
  test::write_tiny_model(dir + "/short", c1, test::random_tensors(5));
  auto e = error_of([&] { Merger m(spec(dir + "/short")); });
  EXPECT_FALSE(e.empty());
  EXPECT_TRUE(has(e, dir + "/short")) << e;
}

TEST_F(Compat, VocabMismatchMergesCommonRows) {
  auto cv = test::tiny_config(33);
  test::write_tiny_model(dir + "/bigvocab", cv, test::random_tensors(6, 0.1, [&](const std::string& n, const std::vector<int64_t>& s) {
    auto b = test::random_tensors(1)(n, test::tiny_shape(cfg, n));
    if (s[0] == 33) return torch::cat({b, torch::zeros({1, s[1]})});
    return b;
  }));
  Merger m(spec(dir + "/bigvocab"));
  auto notes = m.notes();
  ASSERT_EQ(notes.size(), 2u);  // embed + lm_head
  EXPECT_TRUE(has(notes[0], "33 rows")) << notes[0];
  auto base = Checkpoint::open(dir + "/base");
  auto good = Checkpoint::open(dir + "/good");
  auto big = Checkpoint::open(dir + "/bigvocab");
  auto out = m.tensor("model.embed_tokens.weight");
  ASSERT_EQ(out.sizes(), (c10::IntArrayRef{32, 8}));
  auto b = base->get("model.embed_tokens.weight"), g = good->get("model.embed_tokens.weight"),
       x = big->get("model.embed_tokens.weight").narrow(0, 0, 32);
  EXPECT_TRUE(torch::allclose(out, b + (g - b) + (x - b), 1e-5, 1e-6));
}

TEST_F(Compat, NanInDeltaNamesTensorAndIndex) {
  test::write_tiny_model(dir + "/nan", cfg, [&](const std::string& n, const std::vector<int64_t>& s) {
    auto t = test::random_tensors(1)(n, s);
    if (n == "model.layers.0.self_attn.k_proj.weight") t[2][5] = std::numeric_limits<float>::quiet_NaN();
    return t;
  });
  Merger m(spec(dir + "/nan"));  // headers are fine
  m.tensor("model.layers.0.self_attn.q_proj.weight");
  auto e = error_of([&] { m.tensor("model.layers.0.self_attn.k_proj.weight"); });
  EXPECT_TRUE(has(e, "model.layers.0.self_attn.k_proj.weight")) << e;
  EXPECT_TRUE(has(e, "NaN at index [2, 5]")) << e;
}

TEST_F(Compat, SpecErrorsBeforeWeights) {
  auto s = spec(dir + "/good");
  s.experts[1].name = "good";
  EXPECT_TRUE(has(error_of([&] { Merger m(s); }), "twice"));
  s = spec(dir + "/good");
  s.method = "routing";
  EXPECT_TRUE(has(error_of([&] { Merger m(s); }), "--route"));
  s.route = "god";
  EXPECT_TRUE(has(error_of([&] { Merger m(s); }), "did you mean 'good'"));
  s = spec(dir + "/good");
  s.method = "onebit";
  s.route = "good";
  EXPECT_TRUE(has(error_of([&] { Merger m(s); }), "--compress"));  // names without paper defaults
  s = spec(dir + "/does-not-exist");
  EXPECT_TRUE(has(error_of([&] { Merger m(s); }), "does-not-exist"));
}
