// Router: features are mean-pooled hidden states (padding-invariant; layer 0
// = mean of the token embeddings), the MLP separates domains, the saved
// router predicts the same, and the training prompts come from the right splits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "harness/core/error.hpp"
#include "harness/models/model_config.hpp"
#include "harness/runner/router.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm::runner;

namespace {
std::string data_dir() {
  const char* d = std::getenv("BITMERGE_DATA_DIR");
  return d ? d : bmtest::source_dir() + "/../shared/data";
}
bm::ModelConfig tiny_config(int64_t vocab) {
  bm::ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 256;
  return c;
}
}  // namespace

TEST(Router, SeparatesDomainsAndSurvivesSaveLoad) {
  torch::manual_seed(0);
  // Three domains, each a cluster in 16-d feature space.
  auto centers = torch::randn({3, 16}) * 3;
  auto y = torch::arange(3, torch::kLong).repeat_interleave(60);
  auto x = centers.index_select(0, y) + torch::randn({180, 16});
  Router r(16, 32, 3, 7);
  double acc = r.train(x, y, 30, 1e-2);
  EXPECT_GT(acc, 0.95);
  auto xt = centers.index_select(0, torch::arange(3, torch::kLong).repeat_interleave(20)) + torch::randn({60, 16});
  auto pred = r.predict(xt);
  int right = 0;
  for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == static_cast<int64_t>(i / 20);
  EXPECT_GE(right, 55);
  std::string dir = bmtest::make_tmpdir("router");
  r.save(dir + "/r.pt");
  Router back = Router::load(dir + "/r.pt");
  EXPECT_EQ(back.predict(xt), pred);
  EXPECT_EQ(back.classes(), 3);
  bmtest::write(dir + "/bad.pt", "not a router");
  EXPECT_THROW(Router::load(dir + "/bad.pt"), bm::Error);
}

TEST(Router, TrainingPromptsComeFromTheTrainSplits) {
  auto d = router_training_data(data_dir(), {"chat", "math", "code"}, 0, 1);
  size_t n[3] = {0, 0, 0};
  for (auto l : d.labels) ++n[l];
  EXPECT_EQ(n[0], 285u);   // MMLU dev: 57 subjects x 5
  EXPECT_EQ(n[1], 7473u);  // GSM8K train
  EXPECT_EQ(n[2], 374u);   // MBPP task_ids 601..974
  auto capped = router_training_data(data_dir(), {"math", "code"}, 50, 1);
  EXPECT_EQ(capped.texts.size(), 100u);
  EXPECT_EQ(capped.texts[0].rfind("Question: ", 0), 0u);
  EXPECT_THROW(router_training_data(data_dir(), {"poetry"}, 10, 1), bm::Error);
}

TEST(Router, FeaturesAreMeanPooledAndPaddingInvariant) {
  auto tok = bm::Tokenizer::load(data_dir() + "/tokenizers/llama2/tokenizer.model");
  auto model = bm::Transformer::random_init(tiny_config(tok->vocab_size()), 3, torch::kCPU, torch::kFloat32);
  std::vector<std::string> texts = {"Question: what is 2+2?\nAnswer:", "def f(x):\n    return x", "A much longer prompt "
                                    "about the history of a country and its capital city, with many words."};
  auto one = torch::cat({router_features(*model, *tok, {texts[0]}, 2), router_features(*model, *tok, {texts[1]}, 2),
                         router_features(*model, *tok, {texts[2]}, 2)});
  auto batched = router_features(*model, *tok, texts, 2, 512, 3);
  ASSERT_EQ(batched.sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_TRUE(torch::allclose(one, batched, 1e-4, 1e-5)) << (one - batched).abs().max().item<double>();
  // Layer 0 = mean of the token embeddings (with BOS).
  auto ids = tok->encode(texts[1], true);
  auto emb = model->named_parameters().at("model.embed_tokens.weight");
  auto expect = emb.index_select(0, torch::tensor(ids, torch::kLong)).mean(0);
  auto f0 = router_features(*model, *tok, {texts[1]}, 0);
  EXPECT_TRUE(torch::allclose(f0[0], expect, 1e-5, 1e-6));
  EXPECT_THROW(router_features(*model, *tok, {texts[0]}, 3), bm::Error);  // only 2 layers
}
