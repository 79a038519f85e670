#include <algorithm>

#include "harness/core/error.hpp"
#include "tasks/common/task.hpp"
#include "tasks/common/stats.hpp"
#include "tasks/gsm8k/gsm8k.hpp"
#include "tasks/hellaswag/hellaswag.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/math/math.hpp"
#include "tasks/mbpp/mbpp.hpp"
#include "tasks/mmlu/mmlu.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"

namespace bm {

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Task> (*make)();
  bool paper;  // one of the paper's seven benchmarks (in table order below)
};
const Entry kTasks[] = {
    {"mmlu", make_mmlu_task, true},         {"hellaswag", make_hellaswag_task, true},
    {"truthfulqa", make_truthfulqa_task, true}, {"truthfulqa_v0", make_truthfulqa_v0_task, false},
    {"gsm8k", make_gsm8k_task, true},       {"math", make_math_task, true},
    {"math500", make_math500_task, false},  {"mbpp", make_mbpp_task, true},
    {"mbpp_sanitized", make_mbpp_sanitized_task, false}, {"humaneval", make_humaneval_task, true},
};
}  // namespace

std::vector<std::string> task_names() {
  std::vector<std::string> out;
  for (const auto& e : kTasks) out.push_back(e.name);
  return out;
}

std::vector<std::string> paper_task_names() {
  std::vector<std::string> out;
  for (const auto& e : kTasks)
    if (e.paper) out.push_back(e.name);
  return out;
}

std::unique_ptr<Task> find_task(const std::string& name) {
  for (const auto& e : kTasks)
    if (name == e.name) return e.make();
  return nullptr;
}

std::vector<std::string> task_domains() {
  std::vector<std::string> out;
  for (const auto& n : paper_task_names()) {
    std::string d = make_task(n)->domain();
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

std::unique_ptr<Task> make_task(const std::string& name) {
  if (auto t = find_task(name)) return t;
  std::string all;
  for (const auto& e : kTasks) all += std::string(all.empty() ? "" : ", ") + e.name;
  fail("task '" + name + "'", "unknown benchmark" + did_you_mean(name, task_names()) + "; known: " + all);
}

std::vector<DataSource> all_data_sources() {
  std::vector<DataSource> out;
  std::vector<std::string> owner;  // the task that declared out[i] first
  for (const auto& e : kTasks) {
    for (auto& d : e.make()->data_sources()) {
      auto it = std::find_if(out.begin(), out.end(), [&](const DataSource& x) { return x.path == d.path; });
      if (it == out.end()) {
        out.push_back(d);
        owner.push_back(e.name);
      } else if (it->sha256 != d.sha256 || it->url != d.url) {
        fail("task " + std::string(e.name) + ": data file " + d.path,
             "declared by " + owner[static_cast<size_t>(it - out.begin())] +
                 " with another sha256 or url; one file has one sha256 and home: make the data_sources() agree");
      }
    }
  }
  return out;
}

std::vector<TaskOption> all_task_options() {
  std::vector<TaskOption> out;
  std::vector<std::string> owner;
  for (const auto& e : kTasks)
    for (auto& o : e.make()->options()) {
      for (size_t i = 0; i < out.size(); ++i)
        if (out[i].key == o.key)
          fail("task " + std::string(e.name) + ": option " + o.key,
               "already an option of " + owner[i] + "; name a task's options <task>_<what>");
      out.push_back(o);
      owner.push_back(e.name);
    }
  return out;
}

std::string resolve_template(const Task& task, const std::string& requested) {
  auto t = task.templates();
  if (requested.empty() || requested == "default") return t.front();
  for (const auto& x : t)
    if (x == requested) return x;
  std::string all;
  for (const auto& x : t) all += std::string(all.empty() ? "" : ", ") + x;
  fail("template '" + requested + "' for " + task.name(),
       "not supported" + did_you_mean(requested, t) + "; choose one of: " + all);
}

nlohmann::json sample_to_json(const Sample& s) {
  nlohmann::json j;
  j["task"] = s.task;
  j["id"] = s.id;
  j["prompt"] = s.prompt;
  j["raw_output"] = s.raw_output;
  j["extracted"] = s.extracted;
  j["gold"] = s.gold;
  j["correct"] = s.correct;
  j["metrics"] = s.metrics;
  j["extra"] = s.extra;
  return j;
}

Sample sample_from_json(const nlohmann::json& j) {
  Sample s;
  try {
    s.task = j.at("task").get<std::string>();
    s.id = j.at("id").get<std::string>();
    s.prompt = j.value("prompt", "");
    s.raw_output = j.value("raw_output", "");
    s.extracted = j.value("extracted", "");
    s.gold = j.value("gold", "");
    s.correct = j.value("correct", false);
    s.metrics = j.at("metrics").get<std::map<std::string, double>>();
    if (j.contains("extra")) s.extra = j["extra"];
  } catch (const nlohmann::json::exception& e) {
    fail("sample record", std::string("malformed (") + e.what() + "); it must come from a samples.jsonl that bitmerge wrote");
  }
  return s;
}

nlohmann::json aggregate_metrics(const Task& task, const std::vector<Sample>& samples) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& m : task.metric_names()) {
    double sum = 0;
    std::vector<double> xs;
    for (const auto& s : samples) {
      auto it = s.metrics.find(m);
      if (it == s.metrics.end()) continue;
      sum += it->second;
      xs.push_back(it->second);
    }
    if (xs.empty()) continue;
    out[m] = sum / static_cast<double>(xs.size());  // summed as before: scores unchanged bit for bit
    // lm-eval mean_stderr (every metric here aggregates by mean); over sorted
    // scores, so that combined subsets (routed cells) give the same bits.
    std::sort(xs.begin(), xs.end());
    out[m + "_stderr"] = stats::mean_stderr(xs);
    if (xs.size() != samples.size()) out[m + "_n"] = xs.size();
  }
  out["n"] = samples.size();
  return out;
}

}  // namespace bm
