// MMLU (Hendrycks et al.): 57 subjects, test split, 14,042 questions.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct MmluQuestion {
  std::string subject;  // from the file name: "abstract_algebra"
  int64_t row = 0;      // 0-based data row within the subject file
  std::string question;
  std::vector<std::string> choices;  // 4
  int answer = 0;                    // 0..3
};

// Reads <dir>/*_test.csv (or *_dev.csv etc. with `suffix`), sorted by subject.
// Accepts both layouts: the original headerless CSVs with letter answers
// (question,A,B,C,D,answer) and the HF layout with the header
// "question,choice0,choice1,choice2,choice3,answer" and answers 0-3.
std::vector<MmluQuestion> load_mmlu_dir(const std::string& dir, const std::string& suffix = "_test.csv");
std::vector<MmluQuestion> load_mmlu_csv(const std::string& path, const std::string& subject);

// lm-eval zero-shot context: description + question.strip() + choices + "\nAnswer:".
std::string mmlu_context(const MmluQuestion& q);

std::unique_ptr<Task> make_mmlu_task();

}  // namespace bm
