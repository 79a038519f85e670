// TruthfulQA multiple choice (Lin et al.): 817 questions, MC1 and MC2.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct TruthfulqaItem {
  int64_t index = 0;
  std::string question;
  std::vector<std::string> mc1_choices;  // the true one first
  std::vector<int> mc1_labels;
  std::vector<std::string> mc2_choices;
  std::vector<int> mc2_labels;
};

// mc_task.json: a list of {question, mc1_targets: {answer: 0/1}, mc2_targets: {...}} (file order kept).
std::vector<TruthfulqaItem> load_truthfulqa_mc(const std::string& path);

extern const char* const kTruthfulqaPrimer;  // lm-eval's six-question QA primer
std::string truthfulqa_context(const std::string& question);

// MC2 = probability mass on true answers after normalising exp(loglik) over all choices.
double truthfulqa_mc2(const std::vector<double>& loglik, const std::vector<int>& labels);

std::unique_ptr<Task> make_truthfulqa_task();     // "truthfulqa": data/mc_task.json (current upstream)
std::unique_ptr<Task> make_truthfulqa_v0_task();  // "truthfulqa_v0": data/v0/mc_task.json (original release)

}  // namespace bm
