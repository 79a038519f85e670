#include "harness/runner/verbs.hpp"

#include <iostream>
#include <memory>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/report/compare.hpp"
#include "harness/report/plots.hpp"
#include "harness/report/tables.hpp"
#include "harness/report/verbs.hpp"
#include "harness/runner/runner.hpp"
#include "harness/runner/slurm.hpp"

namespace bm::runner {

void add_run_verb(CLI::App& app) {
  struct Opts {
    std::vector<std::string> configs;
    bool dry_run = false, no_results = false, fetch = false;
    std::string gpus, results_dir, cells_dir, backend, family;
    int64_t limit = -1;
    std::vector<size_t> only_cells, only_variants;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("run", "Run an experiment grid (cached cells are skipped; a killed run resumes)");
  sub->add_option("config", o->configs, "experiment TOML file(s)")->required();
  sub->add_flag("--dry-run", o->dry_run, "list the cells without loading weights");
  sub->add_option("--gpus", o->gpus, "GPU indices, one worker process per GPU (e.g. 0,1)");
  sub->add_option("--limit", o->limit, "evaluate only the first N items of each benchmark");
  sub->add_option("--results-dir", o->results_dir, "where cells and results.json go (default results/<name>)");
  sub->add_option("--cells-dir", o->cells_dir,
                  "one cell cache for every config given (default <results dir>/cells): a cell that two "
                  "experiments share (same models, settings and benchmark) is evaluated once");
  sub->add_option("--backend", o->backend, "override the config's backend (model | synthetic)");
  sub->add_option("--family", o->family,
                  "run the grid on another family: a name in configs/families or a family TOML (e.g. mini)");
  sub->add_option("--only-cell", o->only_cells, "evaluate only these cell indices (Slurm array tasks)");
  sub->add_option("--only-variant", o->only_variants, "evaluate only these variant indices (Slurm array tasks)");
  sub->add_flag("--fetch", o->fetch, "download missing checkpoints (hf_id in the family file) first");
  sub->add_flag("--no-results", o->no_results, "do not assemble results.json (Slurm tasks; use slurm collect)");
  sub->callback([o] {
    if (o->configs.size() > 1 && !o->results_dir.empty())
      bm::fail("--results-dir", "one folder per experiment: pass a single config with --results-dir");
    for (auto& path : o->configs) {
      Experiment e = load_experiment(path, o->family);  // whole config validated before any weight loads
      if (!o->backend.empty()) {
        if (o->backend != "model" && o->backend != "synthetic")
          bm::fail("--backend", "'" + o->backend + "' is not one of model, synthetic");
        e.backend = o->backend;
      }
      RunOptions ro;
      ro.dry_run = o->dry_run;
      ro.gpus = parse_gpu_list(o->gpus);
      if (o->limit >= 0) ro.limit = o->limit;
      ro.results_dir = o->results_dir;
      ro.cells_dir = o->cells_dir;
      ro.only_cells = o->only_cells;
      ro.only_variants = o->only_variants;
      ro.write_results = !o->no_results;
      ro.fetch = o->fetch;
      RunSummary s = run_experiment(e, ro);
      if (!o->dry_run) {
        std::cout << e.name << ": " << s.total << " cells, " << s.cached << " cached, " << s.evaluated
                  << " evaluated, " << s.missing << " missing";
        if (!s.results_json.empty()) std::cout << "; results: " << s.results_json;
        std::cout << std::endl;
      }
    }
  });
}

void add_table_verb(CLI::App& app) {
  // Options and behaviour: harness/report/verbs.hpp (paired tests, paper columns, claims).
  bm::report::add_table_options(app);
}

void add_compare_verb(CLI::App& app) {
  // Options and behaviour: harness/report/verbs.hpp (shared with the report tests).
  bm::report::add_compare_options(app);
}

void add_slurm_verb(CLI::App& app) {
  struct Opts {
    std::string config, per = "variant", partition, time = "24:00:00", gres = "auto", account, executable,
                results_dir;
    std::vector<std::string> extra;
    int max_parallel = 0;
    int64_t limit = -1;
    bool no_submit = false, allow_missing = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("slurm", "Run a grid as a Slurm job array");
  sub->require_subcommand(1);
  auto* submit = sub->add_subcommand("submit", "write and submit an sbatch job array (one task per variant or cell)");
  submit->add_option("config", o->config, "experiment TOML")->required();
  submit->add_option("--per", o->per, "variant (default: one model build per task) | cell");
  submit->add_option("--partition", o->partition, "Slurm partition");
  submit->add_option("--account", o->account, "Slurm account");
  submit->add_option("--time", o->time, "time limit per task");
  submit->add_option("--gres", o->gres, "generic resources per task (default gpu:1 for model runs)");
  submit->add_option("--sbatch", o->extra, "extra #SBATCH lines, e.g. --sbatch=--mem=64G");
  submit->add_option("--max-parallel", o->max_parallel, "at most N tasks at once");
  submit->add_option("--executable", o->executable, "bitmerge binary the tasks run (default: this one)");
  submit->add_option("--results-dir", o->results_dir, "shared folder for cells and results");
  submit->add_option("--limit", o->limit, "first N items of each benchmark");
  submit->add_flag("--no-submit", o->no_submit, "only write the script");
  submit->callback([o] {
    Experiment e = load_experiment(o->config);
    if (!o->results_dir.empty()) e.results_dir = o->results_dir;
    SlurmOptions so;
    so.per = o->per;
    so.partition = o->partition;
    so.account = o->account;
    so.time_limit = o->time;
    so.gres = o->gres == "auto" ? (e.backend == "model" ? "gpu:1" : "") : o->gres;
    so.extra = o->extra;
    so.max_parallel = o->max_parallel;
    so.executable = o->executable;
    so.submit = !o->no_submit;
    if (o->limit >= 0) so.limit = o->limit;
    SlurmJob j = slurm_submit(e, o->config, so);
    std::cout << "script: " << j.script << "\ntasks: " << j.tasks << "\n";
    if (!j.job_id.empty()) std::cout << "job: " << j.job_id << "\n";
  });
  auto* collect = sub->add_subcommand("collect", "assemble results.json from the cells the tasks wrote");
  collect->add_option("config", o->config, "experiment TOML")->required();
  collect->add_option("--results-dir", o->results_dir, "shared folder for cells and results");
  collect->add_option("--limit", o->limit, "the --limit the job was submitted with");
  collect->add_flag("--allow-missing", o->allow_missing, "exit 0 even when cells are missing");
  collect->callback([o] {
    Experiment e = load_experiment(o->config);
    RunOptions ro;
    ro.results_dir = o->results_dir;
    if (o->limit >= 0) ro.limit = o->limit;
    apply_overrides(e, ro);
    size_t missing = 0;
    std::string rep;
    std::string path = slurm_collect(e, &missing, &rep);
    std::cout << rep << "results: " << path << " (" << missing << " cells missing)\n";
    if (missing && !o->allow_missing) throw CLI::RuntimeError(1);
  });
}

}  // namespace bm::runner
