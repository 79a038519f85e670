// Per-benchmark eval options belong to their Task (Task::options(): key,
// values, default, effect); the experiment config validates [eval] against the
// registry and the grid keys cells by them, with no per-benchmark switch in
// the runner (issue 17).
#include <gtest/gtest.h>

#include <set>

#include "harness/core/error.hpp"
#include "harness/runner/config.hpp"
#include "harness/runner/grid.hpp"
#include "tasks/common/task.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm::runner;

namespace {
using bmtest::error_of;

std::string experiment(const std::string& dir, const std::string& benchmarks, const std::string& eval) {
  bmtest::tiny_family(dir);
  std::string p = dir + "/e.toml";
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\nbackend = \"synthetic\"\nbenchmarks = " + benchmarks + "\n" +
                       eval + "\n[[variants]]\nname = \"A\"\nkind = \"base\"\n");
  return p;
}
}  // namespace

TEST(TaskOptions, DefaultsComeFromTheTasks) {
  const std::map<std::string, std::string> want = {
      {"hellaswag_metric", "acc_norm"}, {"truthfulqa_metric", "mc2"}, {"gsm8k_prompt", "lm-eval"}, {"math_subset", "full"}};
  EXPECT_EQ(task_option_defaults(), want);
  EXPECT_EQ(EvalSettings().task_options, want);
  std::string tmp = bmtest::make_tmpdir("topt");
  Experiment e = load_experiment(experiment(tmp, R"(["mmlu"])", ""));
  EXPECT_EQ(e.eval.task_options, want);
  e = load_experiment(experiment(tmp, R"(["mmlu"])", "[eval]\nmath_subset = \"math500\"\nhellaswag_metric = \"acc\"\n"));
  EXPECT_EQ(e.eval.task_options.at("math_subset"), "math500");
  EXPECT_EQ(e.eval.task_options.at("hellaswag_metric"), "acc");
  EXPECT_EQ(e.eval.task_options.at("truthfulqa_metric"), "mc2");
}

TEST(TaskOptions, BadValueAndUnknownKeyNameFileAndKeyOnOneLine) {
  std::string tmp = bmtest::make_tmpdir("topt2");
  std::string p = experiment(tmp, R"(["hellaswag"])", "[eval]\nhellaswag_metric = \"acc_nrom\"\n");
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("eval.hellaswag_metric"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'acc_norm'"), std::string::npos) << msg;

  p = experiment(tmp, R"(["math"])", "[eval]\nmath_subset = 500\n");
  msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find("eval.math_subset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("must be a string"), std::string::npos) << msg;

  p = experiment(tmp, R"(["gsm8k"])", "[eval]\ngsm8k_promt = \"mergelm\"\n");
  msg = error_of([&] { load_experiment(p); });
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("eval.gsm8k_promt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'gsm8k_prompt'"), std::string::npos) << msg;
  for (auto& o : bm::all_task_options()) EXPECT_NE(msg.find(o.key), std::string::npos) << o.key << " not listed: " << msg;
}

TEST(TaskOptions, CellKeysHoldTheOptions) {
  // The four options older than Task::options() are in every cell's key (so
  // cached cells keep their keys): an mmlu cell changes with math_subset.
  std::string tmp = bmtest::make_tmpdir("topt3");
  Experiment a = load_experiment(experiment(tmp, R"(["mmlu", "math"])", ""));
  Experiment b = load_experiment(experiment(tmp, R"(["mmlu", "math"])", "[eval]\nmath_subset = \"math500\"\n"));
  auto ca = expand_cells(a, false), cb = expand_cells(b, false);
  ASSERT_EQ(ca.size(), 2u);
  ASSERT_EQ(cb.size(), 2u);
  std::set<std::string> keys;
  for (auto& [k, v] : ca[0].spec.at("settings").items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"add_bos", "limit", "max_new_tokens", "truthfulqa_metric", "hellaswag_metric",
                                         "gsm8k_prompt", "math_subset", "seed", "backend"}));
  EXPECT_EQ(ca[0].spec["settings"]["math_subset"], "full");
  EXPECT_EQ(cb[1].spec["settings"]["math_subset"], "math500");
  EXPECT_NE(ca[0].key, cb[0].key);
  EXPECT_NE(ca[1].key, cb[1].key);
}
