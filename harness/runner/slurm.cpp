#include "harness/runner/slurm.hpp"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/runner/cache.hpp"
#include "harness/runner/grid.hpp"
#include "harness/runner/runner.hpp"

namespace bm::runner {
namespace {
std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}
std::string abspath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf)) return buf;
  return p;
}
}  // namespace

std::string self_executable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) bm::fail("/proc/self/exe", "cannot find this program's path; pass --executable");
  buf[n] = 0;
  return buf;
}

SlurmJob slurm_submit(const Experiment& e0, const std::string& config_path, const SlurmOptions& o) {
  Experiment e = e0;
  RunOptions ro;
  ro.limit = o.limit;
  apply_overrides(e, ro);
  if (o.per != "variant" && o.per != "cell")
    bm::fail("--per", "'" + o.per + "' is not one of variant, cell" + bm::did_you_mean(o.per, {"variant", "cell"}));
  auto cells = expand_cells(e);
  SlurmJob job;
  job.tasks = o.per == "cell" ? cells.size() : e.variants.size();
  std::string dir = e.results_dir + "/slurm";
  bm::make_dirs(dir);
  std::string exe = o.executable.empty() ? self_executable() : o.executable;
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "#SBATCH --job-name=bitmerge-" << e.name << "\n";
  s << "#SBATCH --array=0-" << (job.tasks ? job.tasks - 1 : 0) << (o.max_parallel > 0 ? "%" + std::to_string(o.max_parallel) : "") << "\n";
  s << "#SBATCH --output=" << abspath(dir) << "/task-%a.out\n";
  s << "#SBATCH --ntasks=1\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
  if (!o.time_limit.empty()) s << "#SBATCH --time=" << o.time_limit << "\n";
  if (!o.gres.empty()) s << "#SBATCH --gres=" << o.gres << "\n";
  for (auto& x : o.extra) s << "#SBATCH " << x << "\n";
  s << "set -euo pipefail\n";
  s << "export BITMERGE_SOURCE_DIR=" << shell_quote(repo_root()) << "\n";
  s << "exec " << shell_quote(exe) << " run " << shell_quote(abspath(config_path)) << " --results-dir "
    << shell_quote(abspath(e.results_dir)) << " --no-results "
    << (o.per == "cell" ? "--only-cell" : "--only-variant") << " \"$SLURM_ARRAY_TASK_ID\"";
  if (o.limit) s << " --limit " << *o.limit;
  s << "\n";
  job.script = dir + "/job.sbatch";
  bm::write_file_atomic(job.script, s.str());
  if (!o.submit) return job;
  std::string cmd = "sbatch --parsable " + shell_quote(job.script) + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) bm::fail(job.script, "cannot run sbatch; is Slurm installed here?");
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n')) out.pop_back();
  if (rc != 0) bm::fail(job.script, "sbatch failed: " + out + "; check the partition/gres options or submit by hand");
  job.job_id = out.substr(0, out.find(';'));
  nlohmann::json j = {{"job_id", job.job_id}, {"script", job.script}, {"tasks", job.tasks}, {"per", o.per},
                      {"config", abspath(config_path)}};
  bm::write_file_atomic(dir + "/job.json", j.dump(1) + "\n");
  return job;
}

std::string slurm_collect(const Experiment& e, size_t* missing, std::string* report) {
  auto cells = expand_cells(e);
  CellStore store(e.cell_dir());
  std::string per = "variant";
  std::string jpath = e.results_dir + "/slurm/job.json";
  if (bm::file_exists(jpath)) per = nlohmann::json::parse(bm::read_text_file(jpath)).value("per", "variant");
  size_t m = 0;
  std::ostringstream os;
  for (auto& c : cells) {
    if (store.has(c.key)) continue;
    ++m;
    size_t task = per == "cell" ? c.index : c.variant_index;
    os << "missing: " << c.variant << " x " << c.benchmark << " (array task " << task << ", log "
       << e.results_dir << "/slurm/task-" << task << ".out)\n";
  }
  if (missing) *missing = m;
  if (report) *report = os.str();
  return assemble_results(e, cells, nlohmann::json{{"collected_from", "slurm"}});
}

}  // namespace bm::runner
