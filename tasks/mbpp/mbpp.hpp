// MBPP (Austin et al. 2021): test split = task_ids 11..510 (500 problems);
// also the hand-verified "sanitized" set.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct MbppProblem {
  int64_t task_id = 0;
  std::string text;   // the description ("prompt" in the sanitized file)
  std::string code;   // reference solution
  std::string test_setup_code;
  std::vector<std::string> test_list;
};

// mbpp.jsonl (all 974; filter with mbpp_test_split) or sanitized-mbpp.json
// (a JSON list; test_imports become the setup code).
std::vector<MbppProblem> load_mbpp_jsonl(const std::string& path);
std::vector<MbppProblem> load_mbpp_sanitized(const std::string& path);
std::vector<MbppProblem> mbpp_test_split(const std::vector<MbppProblem>& all);  // task_ids 11..510

// bigcode prompt: '"""\n' + text + "\n" + first test + '\n"""\n'.
std::string mbpp_prompt(const MbppProblem& p);
// code + "\n" + setup + "\n" + all tests, one per line.
std::string mbpp_program(const MbppProblem& p, const std::string& code);
extern const std::vector<std::string> kMbppStops;

std::unique_ptr<Task> make_mbpp_task();            // "mbpp": full file, test split (500)
std::unique_ptr<Task> make_mbpp_sanitized_task();  // "mbpp_sanitized": sanitized file, ids 11..510 (257)

}  // namespace bm
