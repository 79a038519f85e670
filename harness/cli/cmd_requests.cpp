// bitmerge requests: dumps the exact LanguageModel requests that `bitmerge eval`
// would issue (same tasks, item selection, templates, generation budgets), one
// JSON line each, so that a peer (HF transformers, bench/gpu/hf_peer.py) can run
// the identical workload.
//
// The per-task request builders are private to each Task::run, so the verb runs
// each task against a recording LanguageModel that stores the requests and then
// stops the task (a private exception) before any scoring or sandbox execution.
// Every task issues one LanguageModel call per Task::run; the items are passed
// in the eval driver's chunks, so the order is the eval's order.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/engine/engine.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/models/tokenizer_config.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/task.hpp"

namespace {

using nlohmann::json;

struct StopTask {};  // thrown by the recorder once a task's requests are captured

class RecordingModel : public bm::LanguageModel {
 public:
  std::vector<bm::LoglikelihoodRequest> ll;
  std::vector<bm::GenerateRequest> gen;
  int calls = 0;
  std::vector<bm::LoglikelihoodResult> loglikelihood(const std::vector<bm::LoglikelihoodRequest>& reqs) override {
    ++calls;
    ll.insert(ll.end(), reqs.begin(), reqs.end());
    throw StopTask{};
  }
  std::vector<bm::GenerateResult> generate(const std::vector<bm::GenerateRequest>& reqs) override {
    ++calls;
    gen.insert(gen.end(), reqs.begin(), reqs.end());
    throw StopTask{};
  }
  std::string description() const override { return "request recorder"; }
};

}  // namespace

BM_COMMAND(requests, [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "requests", "Dump the engine requests `bitmerge eval` would issue (JSONL) so a peer can run the same workload");
  struct Opts {
    std::string tasks = "all", data_dir, output, tokenizer, tmpl;
    int64_t limit = 0, max_new_tokens = 0, chunk = 256;
    bool add_bos = false, no_add_bos = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--tasks", o->tasks, "Comma list as for eval (all = the seven benchmarks)")->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "Benchmark files (as for eval)");
  sub->add_option("--limit", o->limit, "Only the first N items of each task (0 = all), as eval --limit")
      ->capture_default_str();
  sub->add_option("--max-new-tokens", o->max_new_tokens, "Generation budget (0 = per-task default), as eval")
      ->capture_default_str();
  sub->add_option("--template", o->tmpl, "Prompt template for every task that supports it (default: each task's)");
  sub->add_option("--tokenizer", o->tokenizer,
                  "tokenizer.model or a model directory: also write the token ids the engine would use "
                  "(context_ids/continuation_ids with lm-eval's split, prompt_ids)");
  sub->add_flag("--add-bos", o->add_bos,
                "With --tokenizer: ids with BOS, as eval --add-bos (default: the tokenizer directory's "
                "tokenizer_config.json add_bos_token, as eval)");
  sub->add_flag("--no-add-bos", o->no_add_bos, "With --tokenizer: ids without BOS, as eval --no-add-bos");
  sub->add_option("--output", o->output,
                  "JSONL: {task, type: loglikelihood, context, continuation} | "
                  "{task, type: generate, prompt, until, max_new_tokens}")
      ->required();
  sub->callback([o] {
    bm::EvalOptions eo;
    eo.data_dir = bm::resolve_data_dir(o->data_dir);
    eo.limit = o->limit;
    eo.max_new_tokens = o->max_new_tokens;
    if (!o->tmpl.empty()) eo.templates["*"] = o->tmpl;
    auto names = bm::parse_task_list(o->tasks);
    std::shared_ptr<bm::Tokenizer> tok;
    bm::BosChoice bos;
    if (!o->tokenizer.empty()) {
      const bool is_dir = bm::file_exists(o->tokenizer + "/tokenizer.model");
      tok = is_dir ? bm::Tokenizer::load_from_model_dir(o->tokenizer) : bm::Tokenizer::load(o->tokenizer);
      std::string dir = o->tokenizer;
      if (!is_dir) dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
      bos = bm::resolve_add_bos(bm::bos_override(o->add_bos, o->no_add_bos), o->add_bos ? "--add-bos" : "--no-add-bos", dir);
      bm::log_info("requests: add_bos = " + std::string(bos.add_bos ? "true" : "false") + " (" + bos.source + ")");
    }
    bm::AtomicFile out(o->output);
    int64_t n_ll = 0, n_gen = 0;
    for (const auto& name : names) {
      auto task = bm::make_task(name);
      // As evaluate(): a global template the task does not support falls back to its default.
      std::string req = o->tmpl;
      if (!req.empty()) {
        auto sup = task->templates();
        if (std::find(sup.begin(), sup.end(), req) == sup.end()) req = "";
      }
      bm::RunContext ctx;
      ctx.template_name = bm::resolve_template(*task, req);
      ctx.max_new_tokens = o->max_new_tokens;
      task->load(eo.data_dir);
      std::vector<size_t> idx;
      for (size_t i = 0; i < task->size(); ++i) idx.push_back(i);
      if (o->limit > 0 && static_cast<int64_t>(idx.size()) > o->limit) idx.resize(static_cast<size_t>(o->limit));
      RecordingModel rec;
      const size_t chunk = static_cast<size_t>(o->chunk);
      for (size_t a = 0; a < idx.size(); a += chunk) {
        std::vector<size_t> part(idx.begin() + a, idx.begin() + std::min(idx.size(), a + chunk));
        const int before = rec.calls;
        try {
          (void)task->run(rec, part, ctx);
        } catch (const StopTask&) {
        }
        if (rec.calls != before + 1)
          bm::fail("requests: task " + name, "made " + std::to_string(rec.calls - before) +
                                                 " LanguageModel calls for one chunk (expected 1); the recorder "
                                                 "needs updating for this task");
      }
      for (const auto& r : rec.ll) {
        json j = {{"task", name}, {"type", "loglikelihood"}, {"context", r.context}, {"continuation", r.continuation}};
        if (tok) {
          auto ids = bm::encode_pair(*tok, r.context, r.continuation, bos.add_bos);
          j["context_ids"] = ids.first;
          j["continuation_ids"] = ids.second;
        }
        out.stream() << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      }
      for (const auto& r : rec.gen) {
        json j = {{"task", name},   {"type", "generate"},       {"prompt", r.prompt},
                  {"until", r.until}, {"max_new_tokens", r.max_new_tokens}};
        if (tok) j["prompt_ids"] = bm::encode_text(*tok, r.prompt, bos.add_bos);
        out.stream() << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      }
      n_ll += static_cast<int64_t>(rec.ll.size());
      n_gen += static_cast<int64_t>(rec.gen.size());
      bm::log_info("requests: " + name + ": " + std::to_string(idx.size()) + " items, " + std::to_string(rec.ll.size()) +
                   " loglikelihood + " + std::to_string(rec.gen.size()) + " generate requests (template " +
                   ctx.template_name + ")");
    }
    out.commit();
    bm::log_info("requests: wrote " + std::to_string(n_ll + n_gen) + " requests (" + std::to_string(n_ll) +
                 " loglikelihood, " + std::to_string(n_gen) + " generate) to " + o->output);
  });
});
