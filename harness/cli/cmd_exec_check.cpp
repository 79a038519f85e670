// bitmerge exec-check: score human-eval style completions in the sandbox.
#include <nlohmann/json.hpp>

#include "harness/cli/registry.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "tasks/common/code_exec.hpp"
#include "tasks/common/eval.hpp"

BM_COMMAND(exec_check, [](CLI::App& app) {
  auto* sub = app.add_subcommand("exec-check", "Score code completions ({\"task_id\", \"completion\"} JSONL) in the sandbox");
  struct Opts {
    std::string task, data_dir, completions, output;
    bm::SandboxOptions sandbox;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--task", o->task, "humaneval | mbpp")->required();
  sub->add_option("--data-dir", o->data_dir, "Benchmark files (default: $BITMERGE_DATA_DIR, else ../shared/data)");
  sub->add_option("--completions", o->completions,
                  "JSONL {\"task_id\", \"completion\"}; several samples per task allowed. HumanEval: program = prompt + "
                  "completion + tests; MBPP: program = completion + tests")
      ->required();
  sub->add_option("--output", o->output, "results.json: {\"pass@1\", \"n_tasks\", \"per_task\": {...}}")->required();
  sub->add_option("--timeout", o->sandbox.timeout_s, "Seconds per program")->capture_default_str();
  sub->add_option("--workers", o->sandbox.workers, "Parallel programs (0 = one per core)")->capture_default_str();
  sub->add_flag("--unsafe-no-sandbox", o->sandbox.unsafe_no_sandbox,
                "Run without bubblewrap (rlimits + temp dir only): trusted code only");
  sub->callback([o] {
    bm::require_sandbox(o->sandbox);
    auto comps = bm::load_completions(o->completions);
    auto res = bm::exec_check(o->task, bm::resolve_data_dir(o->data_dir), comps, o->sandbox);
    bm::write_file_atomic(o->output, res.dump(2) + "\n");
    bm::log_info(o->task + ": pass@1 = " + std::to_string(res.value("pass@1", 0.0)) + " over " +
                 std::to_string(res["n_tasks"].get<int64_t>()) + " tasks");
  });
});
