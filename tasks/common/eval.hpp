// The evaluation driver, usable as a library (the experiment runner routes
// subsets of items to different models and combines the per-item samples).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/engine/requests.hpp"
#include "tasks/common/task.hpp"

namespace bm {

struct EvalOptions {
  std::string data_dir;                              // see resolve_data_dir (harness/core/fileio.hpp)
  int64_t limit = 0;                                 // first N items per task (after the subset/filter); 0 = all
  std::map<std::string, std::string> templates;      // task -> template name; key "*" applies to every task
  SandboxOptions sandbox;
  // Only these item ids (Task::item_id) of a task; a task absent here runs all its items.
  std::map<std::string, std::vector<std::string>> item_ids;
  // Optional extra predicate on (task, item id).
  std::function<bool(const std::string& task, const std::string& id)> filter;
  int64_t max_new_tokens = 0;                        // 0 = each task's default
  // Items per LanguageModel call: progress granularity, and on a GPU the pool
  // that continuous batching keeps its rows full from (a small chunk leaves
  // the last wave of every chunk half empty: 256 cost MATH 1.9x on an H100).
  int64_t chunk_items = 2048;
  bool progress = true;
};

struct TaskResult {
  std::string task, version, template_name, headline_metric, headline_note, data_format;
  std::vector<std::pair<std::string, std::string>> data_files;  // (path, sha256)
  nlohmann::json metrics;                                        // aggregate_metrics over samples
  std::vector<Sample> samples;
  double seconds = 0;
};

std::vector<TaskResult> evaluate(LanguageModel& lm, const std::vector<std::string>& tasks, const EvalOptions& opts);

// Fails fast, before a model is loaded: unknown tasks/templates, missing or
// malformed data files, unknown item ids, and an unusable sandbox when a code
// task is requested (loads every task's data once).
void check_eval_inputs(const std::vector<std::string>& tasks, const EvalOptions& opts);

// Combines results of disjoint item subsets of one task (same version and
// template): samples concatenated, metrics recomputed. Throws on a mismatch
// or on an item present twice.
TaskResult combine_results(const std::vector<TaskResult>& parts);

// {"metrics", "headline": {"metric", "value", "note"}, "version", "template",
//  "data_files": [{"path", "sha256"}], "data_format", "n", "seconds"} (no samples).
nlohmann::json task_result_json(const TaskResult& r);
// One JSON line per sample, atomically written.
void write_samples_jsonl(const std::string& path, const std::vector<TaskResult>& results);

// "mmlu,gsm8k" -> names, each checked against the registry ("all" = the seven benchmarks).
std::vector<std::string> parse_task_list(const std::string& csv);

}  // namespace bm

namespace bm {

// The results.json document.
nlohmann::json eval_results_json(const std::vector<TaskResult>& results, const nlohmann::json& model,
                                 const nlohmann::json& settings);

}  // namespace bm
