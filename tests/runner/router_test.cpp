// Router: features are mean-pooled hidden states (padding-invariant; layer 0
// = mean of the token embeddings), the MLP separates domains, the saved
// router predicts the same, and the training prompts come from the right splits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "harness/core/error.hpp"
#include "harness/models/model_config.hpp"
#include "harness/core/fileio.hpp"
#include "harness/runner/router.hpp"
#include "tasks/hellaswag/hellaswag.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/math/math.hpp"
#include "tasks/mmlu/mmlu.hpp"
#include "tasks/synth/synth.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"
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

namespace {
// A small mini-family data directory (synthetic world, all benchmark files).
std::string synth_dir(bm::synth::SynthData* out) {
  bm::synth::SynthConfig c;
  c.seed = 11;
  c.countries = 30;  // 120 facts: 24 test, 20 dev, 76 train
  c.n_test = 24;
  c.n_train_gsm8k = 200;
  c.n_train_math = 100;
  c.pretrain_docs = 300;
  *out = bm::synth::generate(c);
  std::string dir = bmtest::make_tmpdir("router-synth");
  bm::synth::write_benchmark_files(*out, dir);
  return dir;
}
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
const std::string kMmluHead = "The following are multiple choice questions";
}  // namespace

TEST(Router, EachDomainCoversItsBenchmarkFormatsButNoTestItem) {
  bm::synth::SynthData sd;
  std::string dir = synth_dir(&sd);
  auto d = router_training_data(dir, {"chat", "math", "code"}, 0, 1);
  size_t mmlu = 0, tqa = 0, hs = 0, other = 0;
  std::set<std::string> chat;
  for (size_t i = 0; i < d.texts.size(); ++i) {
    if (d.labels[i] != 0) continue;
    const auto& t = d.texts[i];
    chat.insert(t);
    if (starts_with(t, kMmluHead)) ++mmlu;
    else if (starts_with(t, bm::kTruthfulqaPrimer)) ++tqa;
    else if (t.find(": ") != std::string::npos && t.find('\n') == std::string::npos) ++hs;  // "Label: scene"
    else ++other;
  }
  EXPECT_EQ(mmlu, 20u);      // MMLU dev: 5 per subject
  EXPECT_EQ(hs, 2u * 96);    // both scene templates of the 96 non-test facts
  EXPECT_EQ(tqa, 96u);       // one TruthfulQA question per non-test fact
  EXPECT_EQ(other, 0u);
  // Math and code: GSM8K train + MATH-format train; MBPP 601.. + the same
  // functions as HumanEval-format prompts.
  size_t gsm = 0, mth = 0, mbpp = 0, he = 0;
  std::set<std::string> all(d.texts.begin(), d.texts.end());
  for (size_t i = 0; i < d.texts.size(); ++i) {
    const auto& t = d.texts[i];
    if (d.labels[i] == 1) (starts_with(t, "Question: ") ? gsm : starts_with(t, "Problem: ") ? mth : other)++;
    if (d.labels[i] == 2) (starts_with(t, "\"\"\"\n") ? mbpp : starts_with(t, "def ") ? he : other)++;
  }
  EXPECT_EQ(gsm, 200u);
  EXPECT_EQ(mth, 100u);
  EXPECT_GE(mbpp, 100u);
  EXPECT_EQ(he, mbpp);
  EXPECT_EQ(other, 0u);
  for (auto& m : bm::load_math_jsonl(dir + "/math/MATH_test.jsonl"))
    EXPECT_EQ(all.count("Problem: " + m.problem + "\nAnswer:"), 0u) << m.problem;
  for (auto& h : bm::load_humaneval(dir + "/humaneval/HumanEval.jsonl.gz")) EXPECT_EQ(all.count(h.prompt), 0u) << h.task_id;
  // Held out: no test item's evaluation prompt is a router prompt.
  for (auto& q : bm::load_mmlu_dir(dir + "/mmlu/test")) EXPECT_EQ(chat.count(bm::mmlu_context(q)), 0u) << q.question;
  for (auto& it : bm::load_hellaswag_text(dir + "/hellaswag/hellaswag_val_full.txt.gz"))
    EXPECT_EQ(chat.count(it.query), 0u) << it.query;
  for (auto& it : bm::load_truthfulqa_mc(dir + "/truthfulqa/mc_task.json"))
    EXPECT_EQ(chat.count(bm::truthfulqa_context(it.question)), 0u) << it.question;
  // A capped domain takes the formats in turn: 20 + 20 + 20 of 60.
  auto capped = router_training_data(dir, {"chat"}, 60, 1);
  ASSERT_EQ(capped.texts.size(), 60u);
  size_t cm = 0, ct = 0;
  for (auto& t : capped.texts) cm += starts_with(t, kMmluHead), ct += starts_with(t, bm::kTruthfulqaPrimer);
  EXPECT_EQ(cm, 20u);
  EXPECT_EQ(ct, 20u);
  bm::remove_tree(std::string(dir));
}

TEST(Router, RoutesHeldOutTestItemsOfEveryFormatToTheirDomain) {
  // The router as the runner trains it (mean hidden state of a base after 2
  // layers, 200 prompts per domain) routes the test items of all seven
  // benchmarks to their domain (MMLU, HellaSwag, TruthfulQA -> chat; GSM8K,
  // MATH -> math; MBPP, HumanEval -> code). With MMLU dev as the only chat data, HellaSwag scenes and
  // the TruthfulQA primer look like nothing the router has seen.
  bm::synth::SynthData sd;
  std::string dir = synth_dir(&sd);
  auto tok = bm::Tokenizer::load(data_dir() + "/tokenizers/llama2/tokenizer.model");
  auto model = bm::Transformer::random_init(tiny_config(tok->vocab_size()), 5, torch::kCPU, torch::kFloat32);
  auto d = router_training_data(dir, {"chat", "math", "code"}, 200, 0);
  auto x = router_features(*model, *tok, d.texts, 2);
  Router r(x.size(1), 64, 3, 0);
  EXPECT_GT(r.train(x, torch::tensor(d.labels, torch::kLong), 30, 1e-3), 0.95);

  std::map<std::string, std::pair<int64_t, std::vector<std::string>>> held;  // benchmark -> (domain, prompts)
  for (auto& q : bm::load_mmlu_dir(dir + "/mmlu/test")) held["mmlu"].second.push_back(bm::mmlu_context(q));
  for (auto& it : bm::load_hellaswag_text(dir + "/hellaswag/hellaswag_val_full.txt.gz"))
    held["hellaswag"].second.push_back(it.query);
  for (auto& it : bm::load_truthfulqa_mc(dir + "/truthfulqa/mc_task.json"))
    held["truthfulqa"].second.push_back(bm::truthfulqa_context(it.question));
  for (auto& g : sd.gsm8k_test) held["gsm8k"].second.push_back("Question: " + g.question + "\nAnswer:");
  for (auto& m : bm::load_math_jsonl(dir + "/math/MATH_test.jsonl"))
    held["math"].second.push_back("Problem: " + m.problem + "\nAnswer:");
  for (auto& h : bm::load_humaneval(dir + "/humaneval/HumanEval.jsonl.gz")) held["humaneval"].second.push_back(h.prompt);
  for (auto& m : sd.mbpp)
    if (m.task_id >= 11 && m.task_id < 511) held["mbpp"].second.push_back(bm::synth::mbpp_prompt(m));
  for (auto& [b, dom] : std::map<std::string, int64_t>{{"mmlu", 0}, {"hellaswag", 0}, {"truthfulqa", 0}, {"gsm8k", 1}, {"math", 1}, {"mbpp", 2}, {"humaneval", 2}})
    held[b].first = dom;
  for (auto& [b, p] : held) {
    ASSERT_EQ(p.second.size(), 24u) << b;
    auto pick = r.predict(router_features(*model, *tok, p.second, 2));
    size_t right = 0;
    for (auto k : pick) right += k == p.first;
    EXPECT_GE(right, 22u) << b << ": " << right << " of 24 routed to domain " << p.first;
  }
  bm::remove_tree(std::string(dir));
}
