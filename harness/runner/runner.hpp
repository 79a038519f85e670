// Runs an experiment's grid: skips cached cells, evaluates the rest variant by
// variant (one model build per variant), one worker process per GPU, and
// assembles results.json with provenance.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/runner/config.hpp"
#include "harness/runner/grid.hpp"

namespace bm::runner {

// What a backend returns for one cell. score is in percent (0..100).
struct CellOutcome {
  double score = 0;
  std::string metric;          // acc, acc_norm, mc2, exact_match, pass@1
  int64_t n_items = 0;
  nlohmann::json extra = nlohmann::json::object();    // other metrics, router accuracy, ...
  nlohmann::json samples = nlohmann::json::array();   // per-item records (optional)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Evaluate `cells` (all of variant `v`, none cached yet). Call done() as
  // soon as each cell is finished so it is saved before the next starts.
  virtual void evaluate_variant(const Experiment& e, const Variant& v, const std::vector<const Cell*>& cells,
                                const std::function<void(const Cell&, const CellOutcome&)>& done) = 0;
  // Library versions, device, ... merged into results.json provenance.
  virtual nlohmann::json provenance() const { return nlohmann::json::object(); }
};

// Downloads missing checkpoints (set by the model backend; used by run --fetch).
void set_checkpoint_fetcher(std::function<void(const Experiment&)> f);

using BackendFactory = std::function<std::unique_ptr<Backend>(const Experiment&)>;
void register_backend(const std::string& name, BackendFactory f);
std::unique_ptr<Backend> make_backend(const Experiment& e);  // by e.backend; throws naming the key

struct RunOptions {
  bool dry_run = false;
  std::vector<int> gpus;                 // --gpus 0,1: one worker per GPU
  std::optional<int64_t> limit;          // --limit N overrides eval.limit
  std::vector<size_t> only_cells;        // Slurm: evaluate just these cell indices
  std::vector<size_t> only_variants;     // Slurm: evaluate just these variant indices
  bool fetch = false;                    // download missing checkpoints first
  bool write_results = true;             // assemble results.json at the end
  std::string results_dir;               // override
  std::string cells_dir;                 // --cells-dir: a cell cache shared by several experiments
};

struct RunSummary {
  size_t total = 0, cached = 0, evaluated = 0, missing = 0;
  std::string results_json;  // path written ("" when not written)
};

// Applies command-line overrides to the experiment (limit, results dir).
void apply_overrides(Experiment& e, const RunOptions& o);

// The dry-run listing: one line per cell ("<variant> x <benchmark> [cached|todo] key").
std::string describe_cells(const Experiment& e, const std::vector<Cell>& cells);

RunSummary run_experiment(Experiment e, const RunOptions& o);

// Reads the cache and writes <results_dir>/results.json (cells not finished
// are listed as missing). Returns the path.
std::string assemble_results(const Experiment& e, const std::vector<Cell>& cells, const nlohmann::json& extra_prov);

// Provenance common to all backends: git commit, host, seeds, data sha256,
// library versions known at build time, the resolved config.
nlohmann::json base_provenance(const Experiment& e);
nlohmann::json resolved_config(const Experiment& e);

std::vector<int> parse_gpu_list(const std::string& s);  // "0,1,3" (throws naming --gpus)

}  // namespace bm::runner
