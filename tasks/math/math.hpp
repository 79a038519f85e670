// MATH (Hendrycks et al.): test split, 5,000 problems ("math"), and the
// 500-problem PRM800K subset MATH-500 ("math500").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct MathProblem {
  std::string unique_id;  // "test/<subject>/<n>.json"
  std::string problem, solution, level, type;
  std::string answer;     // gold: remove_boxed(last_boxed_only_string(solution))
};

// One JSON object per line (MATH_test.jsonl or MATH-500's test.jsonl).
std::vector<MathProblem> load_math_jsonl(const std::string& path);
// The release layout MATH/test/<subject>/<n>.json: a directory (its "test"
// folder or a parent of it) or a .tar(.gz) holding it. Sorted by subject, then n.
std::vector<MathProblem> load_math_tree(const std::string& dir);
std::vector<MathProblem> load_math_tar(const std::string& path);

// lm-eval's prompt ("lm-eval" template; the router's and the mini family's too).
std::string math_prompt(const std::string& problem);

std::unique_ptr<Task> make_math_task();     // "math": 5,000
std::unique_ptr<Task> make_math500_task();  // "math500": 500

}  // namespace bm
