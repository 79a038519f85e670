#include "harness/runner/runner.hpp"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <toml++/toml.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/process_info.hpp"
#include "harness/core/log.hpp"
#include "harness/report/results.hpp"
#include "harness/runner/cache.hpp"
#include "harness/runner/storage.hpp"

namespace bm::runner {
namespace {

std::map<std::string, BackendFactory>& backends() {
  static std::map<std::string, BackendFactory> m;
  return m;
}

// Machinery-test backend: no model, a deterministic score from the cell key,
// an optional delay per cell. Results are labelled backend=synthetic.
class SyntheticBackend : public Backend {
 public:
  void evaluate_variant(const Experiment& e, const Variant&, const std::vector<const Cell*>& cells,
                        const std::function<void(const Cell&, const CellOutcome&)>& done) override {
    for (const Cell* c : cells) {
      if (e.synthetic_delay_s > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(e.synthetic_delay_s));
      CellOutcome o;
      unsigned long long h = std::stoull(c->key.substr(0, 12), nullptr, 16);
      o.score = 10.0 + static_cast<double>(h % 6000) / 100.0;
      o.metric = "synthetic";
      o.n_items = e.eval.limit > 0 ? e.eval.limit : 10;
      o.extra["worker_pid"] = static_cast<int64_t>(::getpid());
      if (const char* g = std::getenv("CUDA_VISIBLE_DEVICES")) o.extra["cuda_visible_devices"] = g;
      if (const char* t = std::getenv("SLURM_ARRAY_TASK_ID")) o.extra["slurm_array_task_id"] = t;
      done(*c, o);
    }
  }
};

const int kSyntheticRegistered = (register_backend("synthetic",
                                                   [](const Experiment&) -> std::unique_ptr<Backend> {
                                                     return std::make_unique<SyntheticBackend>();
                                                   }),
                                  0);

std::string run_cmd(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      if (n == "." || n == "..") continue;
      std::string p = dir + "/" + n;
      if (ent->d_type == DT_DIR) {
        for (auto& s : list_files(p)) out.push_back(n + "/" + s);
      } else {
        out.push_back(n);
      }
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Evaluates every unfinished cell it can lock, variant by variant.
void worker_loop(const Experiment& e, const std::vector<Cell>& cells, const std::set<size_t>& todo_variants,
                 const CellStore& store, Backend& backend, const std::function<void(const Cell&)>& on_cell) {
  std::map<size_t, std::vector<const Cell*>> by_variant;
  for (auto& c : cells)
    if (todo_variants.count(c.variant_index)) by_variant[c.variant_index].push_back(&c);
  auto pending = [&](const std::vector<const Cell*>& vc) {
    std::vector<const Cell*> p;
    for (auto* c : vc)
      if (!store.has(c->key)) p.push_back(c);
    return p;
  };
  auto run_variant = [&](size_t vi, const std::vector<const Cell*>& todo) {
    const Variant& v = e.variants[vi];
    backend.evaluate_variant(e, v, todo, [&](const Cell& c, const CellOutcome& o) {
      nlohmann::json r = {{"key", c.key},         {"variant", c.variant}, {"benchmark", c.benchmark},
                          {"score", o.score},     {"metric", o.metric},   {"n_items", o.n_items},
                          {"extra", o.extra},     {"spec", c.spec},       {"backend", e.backend},
                          {"finished_unix", static_cast<int64_t>(std::time(nullptr))}};
      if (!o.samples.empty()) {
        // Per-item samples go next to the cell, so results.json stays small.
        bm::write_file_atomic(store.dir() + "/" + c.key + ".samples.json", o.samples.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      }
      store.write(c.key, r);
      on_cell(c);
    });
  };
  // One lock per variant (one model build); a worker given a single cell of a
  // variant (Slurm per-cell tasks) locks just that cell so tasks run in parallel.
  // Named by content (the variant's first cell key), so experiments sharing a cell
  // cache (--cells-dir) build the same variant once: the second waits for the first.
  auto lock_name = [&](size_t vi) {
    const auto& vc = by_variant[vi];
    return (vc.size() == 1 ? "cell-" : "variant-") + vc[0]->key;
  };
  std::vector<size_t> busy;
  for (auto& [vi, vc] : by_variant) {
    auto todo = pending(vc);
    if (todo.empty()) continue;
    FileLock lock(store.dir(), lock_name(vi));
    if (!lock.try_lock()) {
      busy.push_back(vi);
      continue;
    }
    todo = pending(vc);  // another worker may have finished some meanwhile
    if (!todo.empty()) run_variant(vi, todo);
  }
  // Variants another process held: wait for it; if it died, finish them here.
  for (size_t vi : busy) {
    FileLock lock(store.dir(), lock_name(vi));
    lock.lock();
    auto todo = pending(by_variant[vi]);
    if (!todo.empty()) run_variant(vi, todo);
  }
}

}  // namespace

static std::function<void(const Experiment&)>& fetcher() {
  static std::function<void(const Experiment&)> f;
  return f;
}
void set_checkpoint_fetcher(std::function<void(const Experiment&)> f) { fetcher() = std::move(f); }

void register_backend(const std::string& name, BackendFactory f) { backends()[name] = std::move(f); }

std::unique_ptr<Backend> make_backend(const Experiment& e) {
  auto it = backends().find(e.backend);
  if (it == backends().end()) {
    std::vector<std::string> names;
    for (auto& [k, v] : backends()) names.push_back(k);
    bm::fail(e.file, "key 'backend': backend '" + e.backend + "' is not built into this program" +
                         bm::did_you_mean(e.backend, names) + "; use the bitmerge CLI for backend 'model'");
  }
  return it->second(e);
}

std::vector<int> parse_gpu_list(const std::string& s) {
  std::vector<int> g;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) continue;
    char* end = nullptr;
    long v = std::strtol(tok.c_str(), &end, 10);
    if (*end || v < 0) bm::fail("--gpus", "'" + tok + "' is not a GPU index; write e.g. --gpus 0,1");
    g.push_back(static_cast<int>(v));
  }
  return g;
}

void apply_overrides(Experiment& e, const RunOptions& o) {
  if (o.limit) {
    if (*o.limit < 0) bm::fail("--limit", "must be >= 0");
    e.eval.limit = *o.limit;
  }
  if (!o.results_dir.empty()) e.results_dir = o.results_dir;
  if (!o.cells_dir.empty()) e.cells_dir = o.cells_dir;
}

std::string describe_cells(const Experiment& e, const std::vector<Cell>& cells) {
  std::ostringstream os;
  CellStore store(e.cell_dir());
  size_t cached = 0;
  for (auto& c : cells) {
    bool has = store.has(c.key);
    cached += has;
    os << c.index << "\t" << c.variant << "\t" << c.benchmark << "\t" << (has ? "cached" : "todo") << "\t" << c.key
       << "\n";
  }
  os << e.name << ": " << e.variants.size() << " model variants x " << e.benchmarks.size()
     << " benchmarks = " << cells.size() << " cells (" << cached << " cached, " << cells.size() - cached
     << " to run)\n";
  return os.str();
}

nlohmann::json resolved_config(const Experiment& e) {
  using nlohmann::json;
  json vars = json::array();
  for (auto& v : e.variants) {
    json j = variant_spec(e, v, false);
    j["name"] = v.name;
    j["group"] = v.group;
    vars.push_back(j);
  }
  auto model = [&](const ModelRef& m) {
    return json{{"name", m.name},         {"hf_id", m.hf_id},       {"revision", m.revision},
                {"format", m.format},     {"template", m.template_name}, {"domain", m.domain},
                {"dir", bm::relative_to(resolve_model_dir(e.family, m, repo_root()), repo_root())}};
  };
  json experts = json::array();
  for (auto& x : e.family.experts) experts.push_back(model(x));
  json out = {{"file", e.file},
          {"name", e.name},
          {"family", {{"file", e.family.file}, {"name", e.family.name}, {"dtype", e.family.dtype},
                      {"base", model(e.family.base)}, {"experts", experts}}},
          {"benchmarks", e.benchmarks},
          {"eval", {{"add_bos", e.eval.add_bos ? json(*e.eval.add_bos) : json(nullptr)}, {"limit", e.eval.limit}, {"max_new_tokens", e.eval.max_new_tokens},
                    {"batch_size", e.eval.batch_size}, {"template_mode", e.eval.template_mode}}},
          {"router", {{"mode", e.router.mode}, {"layer", e.router.layer}, {"hidden", e.router.hidden},
                      {"epochs", e.router.epochs}, {"train_per_domain", e.router.train_per_domain},
                      {"lr", e.router.lr}, {"domain_of", e.router.domain_of}}},
          {"seed", e.seed},
          {"backend", e.backend},
          {"variants", vars}};
  for (auto& [k, v] : e.eval.task_options) out["eval"][k] = v;  // the tasks' options (Task::options())
  return out;
}

nlohmann::json base_provenance(const Experiment& e) {
  using nlohmann::json;
  json p;
  std::string root = repo_root();
  p["git_commit"] = run_cmd("git -C '" + root + "' rev-parse HEAD 2>/dev/null");
  p["git_dirty"] = !run_cmd("git -C '" + root + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  p["host"] = host;
  const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  p["cuda_visible_devices"] = cvd ? cvd : "";
  p["seeds"] = {{"experiment", e.seed}};
  json libs;
#ifdef BM_TOMLPP_VERSION
  libs["tomlplusplus"] = BM_TOMLPP_VERSION;
#endif
#ifdef BM_SENTENCEPIECE_VERSION
  libs["sentencepiece"] = BM_SENTENCEPIECE_VERSION;
#endif
#ifdef BM_TORCH_VERSION
  libs["torch"] = BM_TORCH_VERSION;
#endif
  libs["nlohmann_json"] = std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                          std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                          std::to_string(NLOHMANN_JSON_VERSION_PATCH);
  libs["compiler"] = __VERSION__;
  p["libraries"] = libs;
  // sha256 of every data file of the benchmarks in the grid.
  json data = json::object();
  std::string data_dir = family_data_dir(e.family);
  p["data_dir"] = bm::relative_to(data_dir, root);  // no machine paths in committed results
  for (auto& b : e.benchmarks) {
    std::string d = data_dir + "/" + b;
    for (auto& f : list_files(d)) data[b + "/" + f] = bm::sha256_file(d + "/" + f);
  }
  p["data_sha256"] = data;
  // The weights behind every number (compare: same hashes -> exact equality).
  json msha = json::object();
  msha[e.family.base.name] = model_fingerprint(e.family, e.family.base);
  for (auto& x : e.family.experts) msha[x.name] = model_fingerprint(e.family, x);
  p["model_sha256"] = msha;
  if (!cpu_numerics_record().empty()) p["cpu_numerics"] = cpu_numerics_record();
  p["config"] = resolved_config(e);
  return p;
}

std::string assemble_results(const Experiment& e, const std::vector<Cell>& cells, const nlohmann::json& extra_prov) {
  using nlohmann::json;
  CellStore store(e.cell_dir());
  json out;
  out["schema"] = bm::report::kResultsSchemaName;
  out["schema_version"] = bm::report::kResultsSchemaVersion;
  out["experiment"] = {{"name", e.name}, {"title", e.title}, {"table", e.table}, {"family", e.family.name},
                       {"benchmarks", e.benchmarks}, {"best_within", e.best_within}, {"backend", e.backend}};
  const ModelConfig sizes = family_model_config(e.family);
  const bool sized = bm::param_counts(sizes).total() > 0;
  json vars = json::array();
  for (auto& v : e.variants) {
    json j = {{"name", v.name}, {"group", v.group}, {"kind", v.kind}};
    if (!v.expert.empty()) j["expert"] = v.expert;
    if (v.kind == "compressed") j["position"] = v.position;
    if (v.kind == "merge") j["method"] = v.method;
    if (!v.compress.empty()) j["compress"] = v.compress;
    if (!v.paper.scores.empty()) j["paper"] = v.paper.scores;
    if (v.paper_storage_percent >= 0) j["paper_storage_percent"] = v.paper_storage_percent;
    if (v.paper_performance_percent >= 0) j["paper_performance_percent"] = v.paper_performance_percent;
    if (sized) j["storage_bytes"] = variant_storage_bytes(e, v, sizes);
    vars.push_back(j);
  }
  out["variants"] = vars;
  json cj = json::array();
  for (auto& c : cells) {
    json r = {{"variant", c.variant}, {"benchmark", c.benchmark}, {"key", c.key}};
    if (store.has(c.key)) {
      json s = store.read(c.key);
      r["status"] = "done";
      r["score"] = s.at("score");
      r["metric"] = s.value("metric", "");
      r["n_items"] = s.value("n_items", 0);
      if (s.contains("extra") && !s["extra"].empty()) r["extra"] = s["extra"];
    } else {
      r["status"] = "missing";
    }
    cj.push_back(r);
  }
  out["cells"] = cj;
  json prov = base_provenance(e);
  for (auto& [k, v] : extra_prov.items()) prov[k] = v;
  out["provenance"] = prov;
  std::string path = e.results_dir + "/results.json";
  bm::report::save_results(path, out);
  return path;
}

RunSummary run_experiment(Experiment e, const RunOptions& o) {
  apply_overrides(e, o);
  bm::make_dirs(e.results_dir);
  std::vector<Cell> cells = expand_cells(e);
  RunSummary sum;
  sum.total = cells.size();
  if (o.dry_run) {
    std::cout << describe_cells(e, cells);
    return sum;
  }
  CellStore store(e.cell_dir());
  std::set<size_t> only_cells(o.only_cells.begin(), o.only_cells.end());
  std::set<size_t> only_variants(o.only_variants.begin(), o.only_variants.end());
  std::vector<Cell> selected;
  for (auto& c : cells) {
    if (!only_cells.empty() && !only_cells.count(c.index)) continue;
    if (!only_variants.empty() && !only_variants.count(c.variant_index)) continue;
    selected.push_back(c);
  }
  std::vector<std::string> keys;
  std::set<size_t> todo_variants;
  for (auto& c : selected) {
    keys.push_back(c.key);
    if (!store.has(c.key)) todo_variants.insert(c.variant_index);
  }
  sum.cached = store.count_present(keys);
  size_t todo = selected.size() - sum.cached;
  bm::log_info(e.name + ": " + std::to_string(selected.size()) + " cells, " + std::to_string(sum.cached) +
               " cached, " + std::to_string(todo) + " to run (results in " + e.results_dir + ")");
  nlohmann::json backend_prov = nlohmann::json::object();
  if (todo > 0) {
    if (e.backend == "model") {
      if (o.fetch) {
        if (!fetcher()) bm::fail("--fetch", "this program cannot download checkpoints; use the bitmerge CLI");
        fetcher()(e);
      }
      check_checkpoints(e);
    }
    if (o.gpus.size() <= 1) {
      if (o.gpus.size() == 1) ::setenv("CUDA_VISIBLE_DEVICES", std::to_string(o.gpus[0]).c_str(), 1);
      auto backend = make_backend(e);
      bm::Progress bar(e.name, static_cast<int64_t>(todo));
      worker_loop(e, selected, todo_variants, store, *backend,
                  [&](const Cell& c) { bar.advance(1, c.variant + " x " + c.benchmark); });
      bar.finish();
      backend_prov = backend->provenance();
    } else {
      // One worker process per GPU; they share the cache through variant locks.
      std::cout.flush();
      std::cerr.flush();
      std::vector<pid_t> pids;
      for (int g : o.gpus) {
        pid_t pid = ::fork();
        if (pid < 0) bm::fail("--gpus", "fork failed; run with fewer GPUs");
        if (pid == 0) {
          int rc = 0;
          try {
            ::setenv("CUDA_VISIBLE_DEVICES", std::to_string(g).c_str(), 1);
            auto backend = make_backend(e);
            worker_loop(e, selected, todo_variants, store, *backend, [](const Cell&) {});
          } catch (const std::exception& ex) {
            std::cerr << "bitmerge: error: worker for GPU " << g << ": " << ex.what() << std::endl;
            rc = 2;
          }
          std::cerr.flush();
          ::_exit(rc);
        }
        pids.push_back(pid);
      }
      bm::Progress bar(e.name + " on GPUs", static_cast<int64_t>(todo));
      size_t shown = 0, running = pids.size();
      int failures = 0;
      std::vector<bool> alive(pids.size(), true);
      while (running > 0) {
        for (size_t i = 0; i < pids.size(); ++i) {
          if (!alive[i]) continue;
          int st = 0;
          if (::waitpid(pids[i], &st, WNOHANG) == pids[i]) {
            alive[i] = false;
            --running;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failures;
          }
        }
        size_t now = store.count_present(keys) - sum.cached;
        if (now > shown) bar.advance(static_cast<int64_t>(now - shown)), shown = now;
        if (running > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      bar.finish();
      if (failures)
        bm::fail(e.file, std::to_string(failures) + " of " + std::to_string(pids.size()) +
                             " GPU workers failed (see their errors above); fix and rerun: finished cells are kept");
    }
  }
  size_t present = store.count_present(keys);
  sum.evaluated = present - sum.cached;
  sum.missing = selected.size() - present;
  if (o.write_results) sum.results_json = assemble_results(e, cells, backend_prov);
  return sum;
}

}  // namespace bm::runner
