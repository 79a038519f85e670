#include "tasks/common/eval.hpp"

#include <chrono>
#include <cstdlib>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "tasks/common/io.hpp"

namespace bm {

std::vector<std::string> parse_task_list(const std::string& csv) {
  std::vector<std::string> out;
  for (auto& t : split(csv, ",")) {
    std::string name = trim(t);
    if (name.empty()) continue;
    if (name == "all") {
      for (const auto& n : paper_task_names()) out.push_back(n);
      continue;
    }
    make_task(name);  // throws on unknown names
    out.push_back(name);
  }
  if (out.empty()) fail("--tasks", "no benchmark named; e.g. --tasks mmlu,gsm8k");
  return out;
}

static std::vector<size_t> select_items(const Task& t, const EvalOptions& opts) {
  std::vector<size_t> idx;
  auto sub = opts.item_ids.find(t.name());
  if (sub != opts.item_ids.end()) {
    std::map<std::string, size_t> by_id;
    for (size_t i = 0; i < t.size(); ++i) by_id[t.item_id(i)] = i;
    std::set<std::string> seen;
    for (const auto& id : sub->second) {
      auto it = by_id.find(id);
      if (it == by_id.end()) fail(t.name() + " item '" + id + "'", "no such item id in the loaded data");
      if (!seen.insert(id).second) continue;
      idx.push_back(it->second);
    }
  } else {
    for (size_t i = 0; i < t.size(); ++i) idx.push_back(i);
  }
  if (opts.filter) {
    std::vector<size_t> kept;
    for (size_t i : idx)
      if (opts.filter(t.name(), t.item_id(i))) kept.push_back(i);
    idx.swap(kept);
  }
  if (opts.limit > 0 && static_cast<int64_t>(idx.size()) > opts.limit) idx.resize(static_cast<size_t>(opts.limit));
  return idx;
}

std::vector<TaskResult> evaluate(LanguageModel& lm, const std::vector<std::string>& tasks, const EvalOptions& opts) {
  std::vector<std::unique_ptr<Task>> ts;
  std::vector<std::string> tmpl;
  for (const auto& name : tasks) {
    ts.push_back(make_task(name));
    auto it = opts.templates.find(name);
    if (it == opts.templates.end()) it = opts.templates.find("*");
    std::string req = it == opts.templates.end() ? "" : it->second;
    // A global template that a task does not support falls back to its default.
    if (opts.templates.count(name) == 0 && !req.empty()) {
      auto sup = ts.back()->templates();
      if (std::find(sup.begin(), sup.end(), req) == sup.end()) req = "";
    }
    tmpl.push_back(resolve_template(*ts.back(), req));
  }
  for (auto& t : ts)
    if (t->needs_sandbox()) {
      require_sandbox(opts.sandbox);  // fail before any model time is spent
      break;
    }
  std::vector<TaskResult> results;
  for (size_t ti = 0; ti < ts.size(); ++ti) {
    Task& t = *ts[ti];
    auto t0 = std::chrono::steady_clock::now();
    t.load(opts.data_dir);
    TaskResult r;
    r.task = t.name();
    r.version = t.version();
    r.template_name = tmpl[ti];
    r.headline_metric = t.headline_metric();
    r.headline_note = t.headline_note();
    r.data_format = t.data_format();
    // Paths relative to the data dir: no machine paths in results.
    for (const auto& f : t.data_files()) r.data_files.emplace_back(relative_to(f, opts.data_dir), sha256_file(f));
    auto idx = select_items(t, opts);
    RunContext ctx;
    ctx.template_name = tmpl[ti];
    ctx.sandbox = opts.sandbox;
    ctx.max_new_tokens = opts.max_new_tokens;
    std::unique_ptr<Progress> prog;
    if (opts.progress) prog = std::make_unique<Progress>(t.name(), static_cast<int64_t>(idx.size()));
    size_t chunk = opts.chunk_items > 0 ? static_cast<size_t>(opts.chunk_items) : idx.size();
    for (size_t a = 0; a < idx.size(); a += chunk) {
      std::vector<size_t> part(idx.begin() + a, idx.begin() + std::min(idx.size(), a + chunk));
      auto s = t.run(lm, part, ctx);
      if (s.size() != part.size()) fail(t.name(), "task returned the wrong number of samples (bug)");
      for (auto& x : s) r.samples.push_back(std::move(x));
      if (prog) prog->advance(static_cast<int64_t>(part.size()));
    }
    if (prog) prog->finish();
    r.metrics = aggregate_metrics(t, r.samples);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r.metrics.contains(r.headline_metric))
      log_info(t.name() + ": " + r.headline_metric + " = " + std::to_string(r.metrics[r.headline_metric].get<double>()) +
               " over " + std::to_string(r.samples.size()) + " items (template " + r.template_name + ")");
    results.push_back(std::move(r));
  }
  return results;
}

void check_eval_inputs(const std::vector<std::string>& tasks, const EvalOptions& opts) {
  bool sandbox = false;
  for (const auto& name : tasks) {
    auto t = make_task(name);
    auto it = opts.templates.find(name);
    if (it != opts.templates.end()) resolve_template(*t, it->second);
    t->load(opts.data_dir);
    select_items(*t, opts);
    sandbox |= t->needs_sandbox();
  }
  if (sandbox) require_sandbox(opts.sandbox);
}

TaskResult combine_results(const std::vector<TaskResult>& parts) {
  if (parts.empty()) fail("combine_results", "nothing to combine");
  TaskResult r = parts[0];
  r.samples.clear();
  r.seconds = 0;
  std::set<std::string> ids;
  for (const auto& p : parts) {
    if (p.task != r.task || p.version != r.version || p.template_name != r.template_name)
      fail("combine_results", "cannot combine " + p.task + " (" + p.version + ", template " + p.template_name + ") with " +
                                  r.task + " (" + r.version + ", template " + r.template_name + ")");
    if (p.data_files != r.data_files) fail("combine_results " + r.task, "parts were evaluated on different data files");
    for (const auto& s : p.samples) {
      if (!ids.insert(s.id).second) fail("combine_results " + r.task, "item '" + s.id + "' appears in two parts");
      r.samples.push_back(s);
    }
    r.seconds += p.seconds;
  }
  r.metrics = aggregate_metrics(*make_task(r.task), r.samples);
  return r;
}

nlohmann::json task_result_json(const TaskResult& r) {
  nlohmann::json j;
  j["metrics"] = r.metrics;
  const std::string se_key = r.headline_metric + "_stderr";
  j["headline"] = {{"metric", r.headline_metric},
                   {"value", r.metrics.contains(r.headline_metric) ? r.metrics[r.headline_metric] : nlohmann::json()},
                   {"stderr", r.metrics.contains(se_key) ? r.metrics[se_key] : nlohmann::json()},
                   {"n", r.samples.size()},
                   {"note", r.headline_note + (r.headline_note.empty() ? "" : "; ") + "n = " +
                                std::to_string(r.samples.size()) + " items"}};
  // Per-item scores (0/1 stored as integers), so paired comparisons need no rerun.
  nlohmann::json ids = nlohmann::json::array(), scores = nlohmann::json::object();
  for (const auto& s : r.samples) {
    ids.push_back(s.id);
    for (const auto& [m, v] : s.metrics) {
      if (v == 0.0 || v == 1.0) scores[m].push_back(static_cast<int>(v));
      else scores[m].push_back(v);
    }
  }
  j["items"] = {{"ids", ids}, {"scores", scores}};
  j["version"] = r.version;
  j["template"] = r.template_name;
  j["data_format"] = r.data_format;
  j["data_files"] = nlohmann::json::array();
  for (const auto& [p, h] : r.data_files) j["data_files"].push_back({{"path", p}, {"sha256", h}});
  j["n"] = r.samples.size();
  j["seconds"] = r.seconds;
  return j;
}

void write_samples_jsonl(const std::string& path, const std::vector<TaskResult>& results) {
  AtomicFile f(path);
  for (const auto& r : results)
    for (const auto& s : r.samples) {
      nlohmann::json j = sample_to_json(s);
      j["version"] = r.version;
      j["template"] = r.template_name;
      f.stream() << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  f.commit();
}

}  // namespace bm

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>

namespace bm {

nlohmann::json eval_results_json(const std::vector<TaskResult>& results, const nlohmann::json& model,
                                 const nlohmann::json& settings) {
  nlohmann::json j;
  j["model"] = model;
  j["settings"] = settings;
  j["tasks"] = nlohmann::json::object();
  for (const auto& r : results) j["tasks"][r.task] = task_result_json(r);
  char ts[32];
  std::time_t now = std::time(nullptr);
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["created"] = ts;
  return j;
}

}  // namespace bm
