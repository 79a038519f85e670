// A benchmark: loads its data files, turns items into LanguageModel requests
// under a prompt template, and scores the answers per item. Per-item scores
// are kept in Samples so that results of disjoint item subsets (routed to
// different models) can be concatenated and aggregated again.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/engine/requests.hpp"
#include "tasks/sandbox/sandbox.hpp"

namespace bm {

struct Sample {
  std::string task, id;
  std::string prompt;                    // context (multiple choice) or generation prompt
  std::string raw_output;                // generated text; "" for multiple choice
  std::string extracted;                 // extracted answer / predicted choice
  std::string gold;
  bool correct = false;                  // by the task's headline metric
  std::map<std::string, double> metrics; // per-item metric values (task metric = mean over items)
  nlohmann::json extra = nlohmann::json::object();  // log-likelihoods, sandbox status, ...
};

nlohmann::json sample_to_json(const Sample& s);
Sample sample_from_json(const nlohmann::json& j);  // throws bm::Error on a malformed record

// A file of a benchmark as `bitmerge data fetch` gets it: its path under the
// data directory (shared/data layout; the top folder is the fetch group,
// `--tasks <folder>`), its sha256 and its public home.
struct DataSource {
  std::string path;    // "gsm8k/test.jsonl"
  std::string sha256;  // lower-case hex, as in shared/data/SHA256SUMS
  std::string url;     // raw file at a pinned commit; "" = derived file (fetched from a --mirror only)
};

// An evaluation option of a task, set per experiment as `[eval] <key> =
// "<value>"` (harness/runner/config.cpp validates it against this; the value
// is part of the cell key). The runner applies it by its effect and keeps no
// per-benchmark switches.
struct TaskOption {
  enum class Effect {
    Metric,    // the value is the metric the benchmark's cells report (one of metric_names())
    Subset,    // the value picks the registered task that evaluates the benchmark (subset_tasks)
    Template,  // the value is the prompt template when the experiment gives none (template_mode "none")
  };
  std::string key;                  // "<task>_<what>", e.g. "hellaswag_metric"; unique over the registry
  std::vector<std::string> values;  // the allowed values, in the order an error lists them
  std::string default_value;
  Effect effect = Effect::Metric;
  std::map<std::string, std::string> subset_tasks;  // Subset: value -> task name
  // In the key of every cell, not only this benchmark's: true only for the four
  // options older than Task::options(), so that cached cells keep their keys.
  bool in_every_cell_key = false;
};

struct RunContext {
  std::string template_name;              // already validated for the task
  SandboxOptions sandbox;
  int64_t max_new_tokens = 0;             // 0 = task default
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  // Table header ("MMLU") and the expert domain it measures ("chat", "math",
  // "code": the router's class and oracle routing's default).
  virtual std::string label() const = 0;
  virtual std::string domain() const = 0;
  // Changes whenever scores could change (data handling, prompt, extraction, metric).
  virtual std::string version() const = 0;
  virtual std::vector<std::string> metric_names() const = 0;
  virtual std::string headline_metric() const = 0;
  virtual std::string headline_note() const { return ""; }
  // Supported prompt templates; the first is the default.
  virtual std::vector<std::string> templates() const { return {"lm-eval"}; }
  virtual bool needs_sandbox() const { return false; }
  // Default max_new_tokens of a generation request under `template_name`
  // (RunContext::max_new_tokens > 0 overrides it); 0 for scored tasks.
  virtual int64_t generation_budget(const std::string& template_name) const {
    (void)template_name;
    return 0;
  }
  // Prompts (in the task's own lm-eval format) from a split that is not
  // evaluated, to train the router for this task's domain; {} when data_dir
  // has none. Throws naming the file when the task requires one
  // (the domain's anchor: MMLU dev, GSM8K train, MBPP 601..974).
  virtual std::vector<std::string> router_prompts(const std::string& data_dir) const {
    (void)data_dir;
    return {};
  }

  // Per-experiment options of this benchmark (TaskOption); {} when it has none.
  virtual std::vector<TaskOption> options() const { return {}; }

  // Reads the data files under data_dir (throws bm::Error naming the path).
  virtual void load(const std::string& data_dir) = 0;
  virtual std::vector<std::string> data_files() const = 0;  // paths read by load()
  // The files that load() and router_prompts() read in the shared/data layout,
  // with sha256 and public home: `bitmerge data fetch` and `data list` ask the
  // registry (all_data_sources()), so a new benchmark declares its files here.
  virtual std::vector<DataSource> data_sources() const = 0;
  virtual std::string data_format() const { return ""; }
  virtual size_t size() const = 0;
  virtual std::string item_id(size_t i) const = 0;

  // Runs items `idx` through the model; one Sample per index, in order.
  virtual std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const = 0;
};

// Registry (tasks/common/registry.cpp): every benchmark, and the paper's seven
// in its table order ("mmlu", "hellaswag", "truthfulqa", "gsm8k", "math",
// "mbpp", "humaneval"): the default of experiments and `--tasks all`.
std::vector<std::string> task_names();
std::vector<std::string> paper_task_names();
std::unique_ptr<Task> make_task(const std::string& name);  // throws with did-you-mean
std::unique_ptr<Task> find_task(const std::string& name);  // nullptr when unknown
// The domains of the paper's benchmarks, in order of first appearance ("chat", "math", "code").
std::vector<std::string> task_domains();

// Every registered task's data_sources(), in registry order, each path once
// (tasks that share a file must declare the same sha256 and url; throws otherwise).
std::vector<DataSource> all_data_sources();

// Every registered task's options(), in registry order (throws when two tasks
// declare one key).
std::vector<TaskOption> all_task_options();

// Template check: returns the template to use for `task` given an override
// ("" = default); throws naming the valid ones.
std::string resolve_template(const Task& task, const std::string& requested);

// Mean of each metric over samples (keys "<metric>"), plus "n".
nlohmann::json aggregate_metrics(const Task& task, const std::vector<Sample>& samples);

}  // namespace bm
