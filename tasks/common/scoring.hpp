// Request building and per-item metrics shared by the benchmarks.
#pragma once
#include <string>
#include <vector>

#include "harness/engine/requests.hpp"
#include "tasks/common/task.hpp"
#include "tasks/sandbox/sandbox.hpp"

namespace bm {

// One multiple-choice item, lm-eval style: each continuation is
// " " + choice (target delimiter) scored given `context`.
struct McItem {
  std::string id, context;
  std::vector<std::string> choices;
  int gold = 0;
};

// Log-likelihoods of every choice of every item: one flat batch to the model.
std::vector<std::vector<LoglikelihoodResult>> score_choices(LanguageModel& lm, const std::vector<McItem>& items);

// acc = argmax of sum log p; acc_norm = argmax of sum log p / len(choice in code points).
// First maximum wins on ties (numpy argmax).
size_t argmax(const std::vector<double>& v);
Sample mc_sample(const std::string& task, const McItem& item, const std::vector<LoglikelihoodResult>& ll,
                 bool with_norm);

// Python's str.capitalize(): first code point upper-cased, the rest lower-cased (ASCII letters only).
std::string py_capitalize(const std::string& s);

// Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).
double pass_at_k(int64_t n, int64_t c, int64_t k);

// Cuts `text` before the first occurrence of any stop string (the engine does
// this too; tasks apply it again so fake/remote models behave the same).
std::string cut_at_stop(const std::string& text, const std::vector<std::string>& until);

// Fills a code task's sample verdict from its sandbox run (HumanEval, MBPP).
void set_exec_verdict(Sample& s, const ProgramResult& run);

}  // namespace bm
