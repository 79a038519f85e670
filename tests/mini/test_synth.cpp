// Synthetic mini-family data: deterministic, disjoint splits, and loadable by
// the real benchmark loaders with the expected counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "harness/core/fileio.hpp"
#include "tasks/common/task.hpp"
#include "tasks/synth/synth.hpp"

namespace fs = std::filesystem;
using namespace bm::synth;

namespace {

SynthConfig small_config(uint64_t seed = 7) {
  SynthConfig c;
  c.seed = seed;
  c.countries = 30;
  c.n_test = 24;
  c.n_train_gsm8k = 200;
  c.n_train_math = 100;
  c.pretrain_docs = 300;
  return c;
}

std::string tmpdir(const std::string& tag) {
  auto p = fs::temp_directory_path() / ("bm_mini_" + tag + "_" + std::to_string(getpid()));
  bm::remove_tree(std::string(p));
  fs::create_directories(p);
  return p.string();
}

std::map<std::string, std::string> hash_tree(const std::string& dir) {
  std::map<std::string, std::string> h;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) h[fs::relative(e.path(), dir).string()] = bm::sha256_file(e.path().string());
  return h;
}

}  // namespace

TEST(MiniSynth, DeterministicForSeedAndDiffersAcrossSeeds) {
  auto a = tmpdir("a"), b = tmpdir("b"), c = tmpdir("c");
  write_benchmark_files(generate(small_config(7)), a);
  write_benchmark_files(generate(small_config(7)), b);
  write_benchmark_files(generate(small_config(8)), c);
  auto ha = hash_tree(a), hb = hash_tree(b), hc = hash_tree(c);
  EXPECT_GE(ha.size(), 14u);
  EXPECT_EQ(ha, hb);
  EXPECT_NE(ha.at("gsm8k/test.jsonl"), hc.at("gsm8k/test.jsonl"));
  EXPECT_NE(ha.at("humaneval/HumanEval.jsonl.gz"), hc.at("humaneval/HumanEval.jsonl.gz"));
  for (auto& d : {a, b, c}) bm::remove_tree(std::string(d));
}

TEST(MiniSynth, SplitsAreDisjoint) {
  auto d = generate(small_config());
  std::set<std::string> test_q, dev_q;
  for (auto& it : d.mmlu_test) test_q.insert(it.question);
  for (auto& it : d.mmlu_dev) dev_q.insert(it.question);
  EXPECT_EQ(test_q.size(), d.mmlu_test.size());  // one item per test fact
  for (auto& q : dev_q) EXPECT_EQ(test_q.count(q), 0u) << q;
  // chat fine-tune data never contains a test item's multiple-choice or QA prompt
  for (auto& e : d.chat)
    for (auto& q : test_q) ASSERT_EQ(e.prompt.find(q), std::string::npos) << "test question in chat data: " << q;
  std::set<std::string> gtest, gtrain;
  for (auto& g : d.gsm8k_test) gtest.insert(g.question);
  for (auto& g : d.gsm8k_train) gtrain.insert(g.question);
  EXPECT_EQ(gtest.size(), d.gsm8k_test.size());
  for (auto& q : gtest) EXPECT_EQ(gtrain.count(q), 0u);
  std::set<std::string> mtest;
  for (auto& m : d.math_test) mtest.insert(m.problem);
  for (auto& e : d.math)
    for (auto& q : mtest) ASSERT_EQ(e.prompt.find(q), std::string::npos) << q;
  std::set<std::string> fnames;
  for (auto& f : d.humaneval) fnames.insert(f.name);
  std::set<int> ids;
  for (auto& m : d.mbpp) {
    EXPECT_TRUE(ids.insert(m.task_id).second);
    EXPECT_TRUE(fnames.insert(m.fn.name).second) << "function in two splits: " << m.fn.name;
  }
  for (auto& e : d.code)
    for (auto& f : d.humaneval) ASSERT_EQ(e.prompt.find(f.signature + "\n"), std::string::npos) << f.name;
}

TEST(MiniSynth, FilesLoadWithTheBenchmarkLoaders) {
  auto cfg = small_config();
  auto dir = tmpdir("load");
  auto d = generate(cfg);
  write_benchmark_files(d, dir);
  std::map<std::string, size_t> expect = {{"mmlu", size_t(cfg.n_test)},      {"hellaswag", size_t(cfg.n_test)},
                                          {"truthfulqa", size_t(cfg.n_test)}, {"gsm8k", size_t(cfg.n_test)},
                                          {"math", size_t(cfg.n_test)},       {"math500", size_t(cfg.n_test)},
                                          {"humaneval", size_t(cfg.n_test)},  {"mbpp", size_t(cfg.n_test)}};
  for (auto& [name, n] : expect) {
    auto t = bm::make_task(name);
    ASSERT_NO_THROW(t->load(dir)) << name;
    EXPECT_EQ(t->size(), n) << name;
  }
  EXPECT_EQ(d.mmlu_dev.size(), 20u);  // 5 per subject, 4 subjects
  EXPECT_TRUE(bm::file_exists(dir + "/mmlu/dev/world_capitals_dev.csv"));
  EXPECT_EQ(d.gsm8k_train.size(), size_t(cfg.n_train_gsm8k));
  bm::remove_tree(std::string(dir));
}

TEST(MiniSynth, CanonicalSolutionsAndAnswersAreConsistent) {
  auto d = generate(small_config());
  for (auto& g : d.gsm8k_test) {
    auto p = g.answer.rfind("#### ");
    ASSERT_NE(p, std::string::npos);
    // the last equation's result is the final answer
    std::string ans = g.answer.substr(p + 5);
    EXPECT_NE(g.answer.find("= " + ans), std::string::npos) << g.answer;
  }
  for (auto& m : d.math_test) EXPECT_NE(m.solution.find("\\boxed{" + m.answer + "}"), std::string::npos);
  for (auto& f : d.humaneval) {
    EXPECT_EQ(f.humaneval_prompt().rfind(f.signature, 0), 0u);
    EXPECT_NE(f.humaneval_test().find("def check(candidate):"), std::string::npos);
  }
}
