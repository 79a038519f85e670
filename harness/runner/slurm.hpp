// Slurm scale-out: one array task per cell or per variant. Each task runs
// `bitmerge run CONFIG --only-variant|--only-cell $SLURM_ARRAY_TASK_ID` on the
// shared cell cache; `collect` assembles results.json from the cache.
#pragma once
#include <string>
#include <vector>

#include "harness/runner/config.hpp"

namespace bm::runner {

struct SlurmOptions {
  std::string per = "variant";  // variant | cell
  std::string partition, time_limit = "24:00:00", gres;  // gres "" = none ("gpu:1" for model runs)
  std::string account;
  std::vector<std::string> extra;  // more sbatch lines, e.g. "--mem=64G"
  int max_parallel = 0;            // array throttle (%N), 0 = none
  std::string executable;          // default: this program (/proc/self/exe)
  bool submit = true;              // false: write the script only
  std::optional<int64_t> limit;
};

struct SlurmJob {
  std::string script, job_id;
  size_t tasks = 0;
};

SlurmJob slurm_submit(const Experiment& e, const std::string& config_path, const SlurmOptions& o);
// Assembles results.json from the cache; lists unfinished cells (and the
// log files of their tasks) in `missing_report`. Returns the results path.
std::string slurm_collect(const Experiment& e, size_t* missing, std::string* missing_report);

std::string self_executable();

}  // namespace bm::runner
