// The task registry owns the benchmark vocabulary (issue 17): names in the
// paper's table order, labels, domains, generation budgets and the router's
// training prompts; runner, report and router ask it.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/strings.hpp"
#include "oracle.hpp"
#include "tasks/common/task.hpp"

using bmtest::data_dir;

TEST(TaskRegistry, PaperBenchmarksLabelsAndDomains) {
  EXPECT_EQ(bm::paper_task_names(),
            (std::vector<std::string>{"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "mbpp", "humaneval"}));
  EXPECT_EQ(bm::task_domains(), (std::vector<std::string>{"chat", "math", "code"}));
  const std::map<std::string, std::pair<std::string, std::string>> want = {
      {"mmlu", {"MMLU", "chat"}},  {"hellaswag", {"HellaSwag", "chat"}}, {"truthfulqa", {"TruthfulQA", "chat"}},
      {"gsm8k", {"GSM8K", "math"}}, {"math", {"MATH", "math"}},          {"mbpp", {"MBPP", "code"}},
      {"humaneval", {"HumanEval", "code"}}};
  for (const auto& [name, ld] : want) {
    auto t = bm::make_task(name);
    EXPECT_EQ(t->label(), ld.first) << name;
    EXPECT_EQ(t->domain(), ld.second) << name;
  }
  std::set<std::string> labels;
  for (const auto& name : bm::task_names()) {
    auto t = bm::find_task(name);
    ASSERT_TRUE(t) << name;
    EXPECT_TRUE(labels.insert(t->label()).second) << "two benchmarks labelled " << t->label();
  }
  EXPECT_EQ(bm::find_task("mmlu2"), nullptr);
  EXPECT_THROW(bm::make_task("mmlu2"), bm::Error);
}

TEST(TaskRegistry, GenerationBudgets) {
  // lm-eval's budgets for the native prompts; MergeLM / chat formats get the longer ones.
  EXPECT_EQ(bm::make_task("gsm8k")->generation_budget("lm-eval"), 256);
  EXPECT_EQ(bm::make_task("gsm8k")->generation_budget("mergelm"), 512);
  EXPECT_EQ(bm::make_task("gsm8k")->generation_budget("llama2-chat"), 512);
  EXPECT_EQ(bm::make_task("math")->generation_budget("lm-eval"), 256);
  EXPECT_EQ(bm::make_task("math")->generation_budget("mergelm"), 1024);
  EXPECT_EQ(bm::make_task("mbpp")->generation_budget("lm-eval"), 512);
  EXPECT_EQ(bm::make_task("humaneval")->generation_budget("lm-eval"), 512);
  EXPECT_EQ(bm::make_task("mmlu")->generation_budget("lm-eval"), 0) << "scored, not generated";
}

TEST(TaskRegistry, RouterPromptsFromSplitsThatAreNotEvaluated) {
  const std::string d = data_dir();
  auto mmlu = bm::make_task("mmlu")->router_prompts(d);
  EXPECT_EQ(mmlu.size(), 57u * 5) << "MMLU dev: 5 per subject";
  EXPECT_TRUE(bm::starts_with(mmlu.front(), "The following are multiple choice questions (with answers) about "));
  auto gsm = bm::make_task("gsm8k")->router_prompts(d);
  EXPECT_EQ(gsm.size(), 7473u) << "GSM8K train";
  EXPECT_TRUE(bm::starts_with(gsm.front(), "Question: ") && bm::ends_with(gsm.front(), "\nAnswer:")) << gsm.front();
  auto mbpp = bm::make_task("mbpp")->router_prompts(d);
  EXPECT_EQ(mbpp.size(), 374u) << "MBPP task_ids 601..974";
  EXPECT_TRUE(bm::starts_with(mbpp.front(), "\"\"\"\n") && bm::ends_with(mbpp.front(), "\n\"\"\"\n"));
  // The shared data has no train split of these: the mini family writes them.
  for (const char* n : {"hellaswag", "truthfulqa", "math", "humaneval"})
    EXPECT_TRUE(bm::make_task(n)->router_prompts(d).empty()) << n;
  // A domain's anchor is required; the others are optional.
  const std::string empty = bmtest::temp_dir("router_empty");
  for (const char* n : {"mmlu", "gsm8k", "mbpp"}) EXPECT_THROW(bm::make_task(n)->router_prompts(empty), bm::Error) << n;
  for (const char* n : {"hellaswag", "truthfulqa", "math", "humaneval"})
    EXPECT_TRUE(bm::make_task(n)->router_prompts(empty).empty()) << n;
}

// Each task declares the files it reads (Task::data_sources): what `bitmerge
// data fetch` gets, so a new benchmark touches no table outside its folder.
TEST(TaskRegistry, DataSourcesAreTheFilesTheTaskReads) {
  const std::string d = data_dir();
  std::set<std::string> all;
  for (const auto& s : bm::all_data_sources()) EXPECT_TRUE(all.insert(s.path).second) << "listed twice: " << s.path;
  EXPECT_EQ(all.size(), 127u) << "the benchmark files of shared/data/SHA256SUMS (129 with the two tokenizers)";
  for (const auto& name : bm::task_names()) {
    auto t = bm::make_task(name);
    auto src = t->data_sources();
    ASSERT_FALSE(src.empty()) << name;
    std::set<std::string> declared;
    for (const auto& s : src) {
      declared.insert(s.path);
      EXPECT_TRUE(all.count(s.path)) << name << ": " << s.path;
      EXPECT_EQ(s.sha256, bm::sha256_file(d + "/" + s.path)) << name << ": " << s.path;
      EXPECT_TRUE(s.url.empty() || bm::starts_with(s.url, "https://raw.githubusercontent.com/")) << s.url;
    }
    t->load(d);
    for (const auto& f : t->data_files())
      EXPECT_TRUE(declared.count(bm::relative_to(f, d))) << name << " reads " << f << " but does not declare it";
  }
  // Router prompts come from declared files too (MMLU dev, GSM8K train, MBPP 601..974).
  auto has = [&](const std::string& task, const std::string& path) {
    for (const auto& s : bm::make_task(task)->data_sources())
      if (s.path == path) return true;
    return false;
  };
  EXPECT_TRUE(has("mmlu", "mmlu/dev/abstract_algebra_dev.csv"));
  EXPECT_TRUE(has("gsm8k", "gsm8k/train.jsonl"));
  EXPECT_TRUE(has("mbpp_sanitized", "mbpp/mbpp.jsonl"));
  EXPECT_FALSE(has("truthfulqa", "truthfulqa/v0/mc_task.json")) << "truthfulqa_v0's file";
}

// A task's eval options (Task::options()) are consistent with the task itself:
// the runner applies them by effect and keeps no per-benchmark switch.
TEST(TaskRegistry, OptionsAreConsistentWithTheirTask) {
  std::set<std::string> keys;
  for (const auto& name : bm::task_names()) {
    auto t = bm::make_task(name);
    for (const auto& o : t->options()) {
      SCOPED_TRACE(name + ": " + o.key);
      EXPECT_TRUE(keys.insert(o.key).second) << "two tasks declare " << o.key;
      EXPECT_TRUE(bm::starts_with(o.key, name + "_"));
      EXPECT_NE(std::find(o.values.begin(), o.values.end(), o.default_value), o.values.end());
      for (const auto& v : o.values) {
        if (o.effect == bm::TaskOption::Effect::Metric) {
          auto m = t->metric_names();
          EXPECT_NE(std::find(m.begin(), m.end(), v), m.end()) << v;
        } else if (o.effect == bm::TaskOption::Effect::Subset) {
          ASSERT_TRUE(o.subset_tasks.count(v)) << v;
          EXPECT_NE(bm::find_task(o.subset_tasks.at(v)), nullptr) << o.subset_tasks.at(v);
        } else {
          auto tm = t->templates();
          EXPECT_NE(std::find(tm.begin(), tm.end(), v), tm.end()) << v;
        }
      }
    }
  }
  // The defaults leave every task as it is: its headline metric, itself, its default template.
  EXPECT_EQ(bm::make_task("hellaswag")->headline_metric(), "acc_norm");
  EXPECT_EQ(bm::make_task("truthfulqa")->headline_metric(), "mc2");
  EXPECT_EQ(bm::make_task("gsm8k")->templates().front(), "lm-eval");
  EXPECT_EQ(bm::make_task("math")->options().at(0).subset_tasks.at("full"), "math");
  EXPECT_EQ(keys, (std::set<std::string>{"hellaswag_metric", "truthfulqa_metric", "gsm8k_prompt", "math_subset"}));
  EXPECT_TRUE(bm::make_task("truthfulqa_v0")->options().empty()) << "truthfulqa_metric applies to truthfulqa only";
}
