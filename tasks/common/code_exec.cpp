#include "tasks/common/code_exec.hpp"

#include <map>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/mbpp/mbpp.hpp"

namespace bm {

std::vector<Completion> load_completions(const std::string& path) {
  std::vector<Completion> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    RecordRef r{j, path, line};
    Completion c;
    const auto& id = r.at("task_id");
    if (id.is_string()) c.task_id = id.get<std::string>();
    else if (id.is_number_integer()) c.task_id = std::to_string(id.get<int64_t>());
    else r.bad("'task_id' must be a string or an integer");
    c.completion = r.str("completion");
    out.push_back(std::move(c));
  });
  if (out.empty()) fail(path, "no completions; expected JSON lines {\"task_id\": ..., \"completion\": ...}");
  return out;
}

nlohmann::json exec_check(const std::string& task, const std::string& data_dir, const std::vector<Completion>& comps,
                          const SandboxOptions& opts) {
  std::vector<std::string> programs, ids;
  size_t n_problems = 0;
  if (task == "humaneval") {
    auto t = make_humaneval_task();
    t->load(data_dir);
    auto probs = load_humaneval(t->data_files()[0]);
    n_problems = probs.size();
    std::map<std::string, const HumanevalProblem*> by_id;
    for (const auto& p : probs) by_id[p.task_id] = &p;
    for (size_t i = 0; i < comps.size(); ++i) {
      auto it = by_id.find(comps[i].task_id);
      if (it == by_id.end())
        fail("completion " + std::to_string(i + 1), "unknown HumanEval task_id '" + comps[i].task_id + "' (expected HumanEval/0..163)");
      programs.push_back(humaneval_program(*it->second, comps[i].completion));
      ids.push_back(comps[i].task_id);
    }
  } else if (task == "mbpp") {
    auto t = make_mbpp_task();
    t->load(data_dir);
    auto probs = load_mbpp_jsonl(t->data_files()[0]);
    n_problems = mbpp_test_split(probs).size();
    std::map<std::string, const MbppProblem*> by_id;
    for (const auto& p : probs) by_id[std::to_string(p.task_id)] = &p;
    for (size_t i = 0; i < comps.size(); ++i) {
      std::string id = base_name(comps[i].task_id);  // "Mbpp/11" -> "11"
      auto it = by_id.find(id);
      if (it == by_id.end()) fail("completion " + std::to_string(i + 1), "unknown MBPP task_id '" + comps[i].task_id + "'");
      programs.push_back(mbpp_program(*it->second, comps[i].completion));
      ids.push_back(id);
    }
  } else {
    fail("--task " + task, "exec-check scores code benchmarks only; use humaneval or mbpp");
  }
  auto runs = run_python_programs(programs, opts);
  std::map<std::string, std::vector<std::string>> status;
  std::vector<std::string> order;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!status.count(ids[i])) order.push_back(ids[i]);
    status[ids[i]].push_back(runs[i].status);
  }
  nlohmann::json per_task = nlohmann::json::object();
  int64_t min_n = INT64_MAX;
  std::map<int, double> sums;
  for (const auto& id : order) {
    const auto& st = status[id];
    int64_t n = static_cast<int64_t>(st.size()), c = 0;
    for (const auto& s : st) c += s == "passed";
    min_n = std::min(min_n, n);
    nlohmann::json e;
    e["n"] = n;
    e["c"] = c;
    e["status"] = st;
    for (int k : {1, 10, 100})
      if (n >= k) {
        double v = pass_at_k(n, c, k);
        e["pass@" + std::to_string(k)] = v;
        sums[k] += v;
      }
    per_task[id] = e;
  }
  nlohmann::json out;
  for (int k : {1, 10, 100})
    if (min_n >= k && !order.empty()) out["pass@" + std::to_string(k)] = sums[k] / static_cast<double>(order.size());
  out["n_tasks"] = order.size();
  out["n_samples"] = ids.size();
  out["n_problems"] = n_problems;
  out["task"] = task;
  out["per_task"] = per_task;
  return out;
}

}  // namespace bm
