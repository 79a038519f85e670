// Scoring code completions in the sandbox: shared by the humaneval / mbpp
// tasks and `bitmerge exec-check`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tasks/sandbox/sandbox.hpp"

namespace bm {

struct Completion {
  std::string task_id;  // "HumanEval/3" / "11" (MBPP ids are normalised to the number)
  std::string completion;
};

// Reads human-eval style JSONL ({"task_id", "completion"}; several per task allowed).
std::vector<Completion> load_completions(const std::string& path);

// Runs every completion against its problem's tests; returns
// {"pass@1": x, ["pass@10", "pass@100" where every task has >= k samples],
//  "n_tasks", "n_samples", "n_problems", "per_task": {id: {"n", "c", "pass@1", "status": [...]}}}.
// task: "humaneval" or "mbpp"; completions for unknown task ids are an error.
nlohmann::json exec_check(const std::string& task, const std::string& data_dir, const std::vector<Completion>& comps,
                          const SandboxOptions& opts);

}  // namespace bm
