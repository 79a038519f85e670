// bitmerge eval: run benchmarks on one model and write results.json (+ samples).
#include <nlohmann/json.hpp>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/engine/engine.hpp"
#include "harness/models/fingerprint.hpp"
#include "harness/models/tokenizer_config.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/io.hpp"

#include "bm_git_commit.h"  // BITMERGE_GIT_COMMIT, generated at build time

namespace {

// "--template chat" (every task) or "--template gsm8k=mergelm,math=mergelm".
std::map<std::string, std::string> parse_templates(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> out;
  for (const auto& spec : specs)
    for (const auto& part : bm::split(spec, ",")) {
      std::string p = bm::trim(part);
      if (p.empty()) continue;
      size_t eq = p.find('=');
      if (eq == std::string::npos) out["*"] = p;
      else out[bm::trim(p.substr(0, eq))] = bm::trim(p.substr(eq + 1));
    }
  return out;
}

std::map<std::string, std::vector<std::string>> read_items_file(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bm::read_text_file(path));
    return j.get<std::map<std::string, std::vector<std::string>>>();
  } catch (const nlohmann::json::exception& e) {
    bm::fail(path, "expected {\"<task>\": [\"<item id>\", ...]} (ids as in samples.jsonl)");
  }
}

}  // namespace

BM_COMMAND(eval, [](CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Evaluate a model on benchmarks (lm-eval zero-shot protocols; code in the sandbox)");
  struct Opts {
    std::string model, tasks = "all", data_dir, output, samples, items;
    std::vector<std::string> templates;
    int64_t limit = 0, max_new_tokens = 0;
    bm::EngineOptions eng;
    bm::SandboxOptions sandbox;
    bool add_bos = false, no_add_bos = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "Model directory (config.json, safetensors, tokenizer.model)")->required();
  sub->add_option("--tasks", o->tasks,
                  "Comma list of " + bm::join(bm::task_names(), ",") + "; all = the paper's seven (" +
                      bm::join(bm::paper_task_names(), ",") + ")")
      ->capture_default_str();
  sub->add_option("--data-dir", o->data_dir,
                  "Benchmark files (layout of shared/data/README.md). Default: $BITMERGE_DATA_DIR, else ../shared/data "
                  "next to the repository the binary was built in");
  sub->add_option("--output", o->output, "results.json: per-task metrics, versions, data sha256, templates, model, settings")
      ->required();
  sub->add_option("--samples", o->samples, "Per-item JSONL (prompt, raw output, extracted, gold, correct, metrics)");
  sub->add_option("--limit", o->limit, "Only the first N items of each task (0 = all)")->capture_default_str();
  sub->add_option("--items", o->items, "JSON {task: [item ids]}: evaluate only these items of those tasks");
  sub->add_option("--template", o->templates,
                  "Prompt template: NAME for every task that supports it, or TASK=NAME,...; names: lm-eval (default), "
                  "mergelm (Alpaca, step by step), chat formats llama2-chat | mistral-inst | alpaca | mrm8488-coder "
                  "(docs/checkpoints.md)");
  sub->add_option("--max-new-tokens", o->max_new_tokens, "Generation budget (0 = per-task default)")->capture_default_str();
  sub->add_option("--device", o->eng.device, "cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--dtype", o->eng.dtype, "float32 | bfloat16 | float16 (default: float32 on cpu, bfloat16 on cuda)");
  sub->add_option("--batch-size", o->eng.batch_size, "Rows per forward pass")->capture_default_str();
  sub->add_option("--tokenizer-from", o->eng.tokenizer_fallback,
                  "Base model dir whose tokenizer.model serves a model that ships tokenizer.json only (ids checked)");
  sub->add_flag("--add-bos", o->add_bos,
                "Prepend BOS to text requests (default: the model's tokenizer_config.json add_bos_token, as "
                "lm-eval's HF backend; false without one; the choice and its source go to results.json settings)");
  sub->add_flag("--no-add-bos", o->no_add_bos, "No BOS before text requests (overrides tokenizer_config.json)");
  sub->add_option("--timeout", o->sandbox.timeout_s, "Seconds per program (code tasks)")->capture_default_str();
  sub->add_option("--workers", o->sandbox.workers, "Parallel programs (0 = one per core)")->capture_default_str();
  sub->add_flag("--unsafe-no-sandbox", o->sandbox.unsafe_no_sandbox,
                "Run generated code without bubblewrap (rlimits + temp dir only): trusted machines only");
  sub->callback([o] {
    bm::EvalOptions eo;
    eo.data_dir = bm::resolve_data_dir(o->data_dir);
    eo.limit = o->limit;
    eo.templates = parse_templates(o->templates);
    eo.sandbox = o->sandbox;
    eo.max_new_tokens = o->max_new_tokens;
    if (!o->items.empty()) eo.item_ids = read_items_file(o->items);
    auto tasks = bm::parse_task_list(o->tasks);
    bm::check_eval_inputs(tasks, eo);  // data, templates, sandbox: before minutes of model loading
    std::string fp = bm::model_fingerprint(o->model);
    auto bos = bm::resolve_add_bos(bm::bos_override(o->add_bos, o->no_add_bos),
                                   o->add_bos ? "--add-bos" : "--no-add-bos", o->model);
    o->eng.add_bos = bos.add_bos;
    auto engine = bm::Engine::load(o->model, o->eng);
    auto results = bm::evaluate(*engine, tasks, eo);
    nlohmann::json model = {{"dir", o->model}, {"fingerprint", fp}, {"description", engine->description()}};
    nlohmann::json tmpl = eo.templates;
    nlohmann::json settings = {{"device", o->eng.device},
                               {"dtype", o->eng.dtype.empty() ? "default" : o->eng.dtype},
                               {"batch_size", o->eng.batch_size},
                               {"add_bos", o->eng.add_bos},
                               {"add_bos_source", bos.source},
                               {"limit", o->limit},
                               {"items_file", o->items},
                               {"data_dir", eo.data_dir},
                               {"templates", tmpl},
                               {"max_new_tokens", o->max_new_tokens},
                               {"sandbox",
                                {{"timeout_s", o->sandbox.timeout_s},
                                 {"memory_mb", o->sandbox.memory_mb},
                                 {"unsafe_no_sandbox", o->sandbox.unsafe_no_sandbox}}},
                               {"bitmerge_commit", BITMERGE_GIT_COMMIT}};
    if (!o->samples.empty()) bm::write_samples_jsonl(o->samples, results);
    bm::write_file_atomic(o->output, bm::eval_results_json(results, model, settings).dump(2) + "\n");
  });
});
