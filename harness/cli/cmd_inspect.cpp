// bitmerge inspect: what a model directory holds (architecture, sizes, roles),
// or with --task-vectors what a family's task vectors look like (relative
// norms, cosines, sign agreement, zeros per position; merging/tv_stats.hpp).
// Both read weights and report on them without writing models, so they are
// one verb; `storage` stays the byte accounting computed from shapes.
#include <sys/resource.h>

#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/runner/config.hpp"
#include "merging/api.hpp"
#include "merging/tv_stats.hpp"

namespace {

struct InspectArgs {
  std::string model, base, family, json;
  std::vector<std::string> experts;
  bool task_vectors = false, common_vocab = false;
  int64_t chunk_mib = 16;
};

std::string family_file(const std::string& ref) {
  // A path when it looks like one (a '/' or .toml), else a name: the directory
  // mini-nano/ in the repository root must not shadow configs/families/mini-nano.toml.
  const bool is_path = ref.find('/') != std::string::npos || (ref.size() > 5 && ref.substr(ref.size() - 5) == ".toml");
  if (is_path && bm::file_exists(ref)) return ref;
  std::string f = bm::runner::repo_root() + "/configs/families/" + ref + ".toml";
  if (bm::file_exists(f)) return f;
  bm::fail("--family " + ref, "no such file, and no " + f + "; give a family .toml or a name in configs/families");
}

void run_task_vector_stats(const InspectArgs& a) {
  using namespace bm::merging;
  if (!a.model.empty()) bm::fail("inspect --model", "--model and --task-vectors do not go together; use --base");
  std::shared_ptr<bm::Checkpoint> base;
  std::vector<TvExpert> experts;
  if (!a.family.empty()) {
    if (!a.base.empty()) bm::fail("inspect --base", "--family names the base already; drop --base or --family");
    auto f = bm::runner::load_family(family_file(a.family));
    std::set<std::string> only;  // --experts with --family: names only
    for (auto& arg : a.experts) {
      std::stringstream ss(arg);
      for (std::string n; std::getline(ss, n, ',');) {
        if (!f.expert(n))
          bm::fail("--experts " + n, "no such expert in " + f.file + bm::did_you_mean(n, f.expert_names()) +
                                         "; with --family give expert names (chat,math), not name=DIR");
        only.insert(n);
      }
    }
    const std::string root = bm::runner::repo_root();
    bm::runner::require_model_present(f, f.base, root);
    std::string base_dir = bm::runner::resolve_model_dir(f, f.base, root);
    base = bm::Checkpoint::open(base_dir);
    for (auto& m : f.experts) {
      if (!only.empty() && !only.count(m.name)) continue;
      bm::runner::require_model_present(f, m, root);
      std::string dir = bm::runner::resolve_model_dir(f, m, root);
      experts.push_back({m.name, m.format == "lora" ? bm::Checkpoint::open_lora(dir, base_dir) : bm::Checkpoint::open(dir)});
    }
  } else {
    std::vector<ExpertSpec> specs;
    for (auto& e : a.experts)
      for (auto& s : parse_experts_arg(e)) specs.push_back(s);
    if (a.base.empty() || specs.empty())
      bm::fail("inspect --task-vectors", "give --base DIR and --experts name=DIR[,...], or --family NAME|FILE.toml");
    base = bm::Checkpoint::open(a.base);
    for (auto& s : specs) experts.push_back({s.name, bm::Checkpoint::open(s.path)});
  }
  if (a.chunk_mib < 1) bm::fail("--chunk-mib", "must be at least 1");
  TvStatsOptions opts;
  opts.common_vocab = a.common_vocab;
  opts.chunk_elems = a.chunk_mib * (int64_t(1) << 20) / 8;  // entries per model and chunk (float64 when converted)
  std::unique_ptr<bm::Progress> bar;
  opts.progress = [&](size_t done, size_t total, const std::string& t) {
    if (done == 0) {
      bar = std::make_unique<bm::Progress>("task-vector statistics", static_cast<int64_t>(total));
      return;
    }
    bar->advance(1, t);
    if (done == total) bar->finish();
  };
  auto t0 = std::chrono::steady_clock::now();
  TvStatsReport r = task_vector_stats(base, experts, opts);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!a.json.empty()) bm::write_file_atomic(a.json, r.to_json());
  std::cout << r.to_markdown();
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  bm::log_info("task-vector statistics: " + std::to_string(r.tensors) + " tensors in " + bm::format_duration(secs) +
               ", peak RSS " + std::to_string(ru.ru_maxrss / 1024) + " MiB" +
               (a.json.empty() ? std::string() : ", JSON in " + a.json));
}

}  // namespace

BM_COMMAND(inspect, [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "inspect", "Architecture, parameter count, dtype, bytes and tensors per role of a model; with --task-vectors, "
                 "task-vector statistics of a base and its experts");
  auto a = std::make_shared<InspectArgs>();
  sub->add_option("--model", a->model, "Model directory");
  sub->add_flag("--task-vectors,--task-vector", a->task_vectors,
                "task-vector statistics per position: relative norm, cosine, sign agreement, zeros");
  sub->add_option("--base", a->base, "--task-vectors: base (pretrained) model dir");
  sub->add_option("--experts,--expert", a->experts, "--task-vectors: name=DIR[,name=DIR...] (repeatable)");
  sub->add_option("--family", a->family,
                  "--task-vectors: family name (configs/families) or .toml; its base and experts "
                  "(--experts NAME,... picks some)");
  sub->add_flag("--common-vocab", a->common_vocab,
                "--task-vectors: when embed/lm_head rows differ, compare the rows all models share (default: error)");
  sub->add_option("--json", a->json, "--task-vectors: also write the statistics as JSON here (atomic)");
  sub->add_option("--chunk-mib", a->chunk_mib, "--task-vectors: MiB of float64 per model read at once (default 16)");
  sub->callback([a] {
    if (a->task_vectors) return run_task_vector_stats(*a);
    if (!a->base.empty() || !a->experts.empty() || !a->family.empty())
      bm::fail("inspect --base/--experts/--family", "these are for task-vector statistics; add --task-vectors");
    if (a->model.empty()) bm::fail("inspect", "give --model DIR (or --task-vectors with --base/--experts or --family)");
    auto ck = bm::Checkpoint::open(a->model);
    const auto& c = ck->config();
    ck->validate_against_config();  // shape vs config.json: one-line error naming the tensor
    struct RoleStat {
      int64_t tensors = 0, params = 0;
      uint64_t bytes = 0;
    };
    std::map<std::string, RoleStat> roles;
    std::map<std::string, int64_t> dtypes;
    int64_t params = 0;
    uint64_t bytes = 0;
    for (const auto& name : ck->names()) {
      auto info = ck->info(name);
      auto& r = roles[bm::role_name(bm::classify_tensor(name).role)];
      r.tensors += 1;
      r.params += info.numel();
      r.bytes += info.nbytes;
      params += info.numel();
      bytes += info.nbytes;
      dtypes[bm::dtype_name(info.dtype)] += info.numel();
    }
    auto& o = std::cout;
    o << "model:          " << a->model << "\n";
    o << "architecture:   " << c.architecture << " (" << c.model_type << ")\n";
    o << "layers:         " << c.num_hidden_layers << "  hidden " << c.hidden_size << "  intermediate "
      << c.intermediate_size << "  heads " << c.num_attention_heads << "  kv_heads " << c.num_key_value_heads
      << "  head_dim " << c.head_dim << "\n";
    o << "vocab:          " << c.vocab_size << "  tied embeddings " << (c.tie_word_embeddings ? "yes" : "no")
      << "  rope_theta " << c.rope_theta << "  rms_norm_eps " << c.rms_norm_eps << "  sliding_window "
      << (c.sliding_window > 0 ? std::to_string(c.sliding_window) : "none") << "\n";
    o << "parameters:     " << params << " (config implies " << c.parameter_count() << ")\n";
    o << "dtype:          ";
    for (auto& [d, n] : dtypes) o << d << " (" << n << " params) ";
    o << " config torch_dtype " << c.torch_dtype << "\n";
    o << "bytes:          " << bytes << " (" << static_cast<double>(bytes) / (1 << 30) << " GiB)\n";
    o << "tensors:        " << ck->names().size() << "\n";
    o << "per role:       role tensors params bytes\n";
    for (auto& [name, r] : roles)
      o << "  " << name << " " << r.tensors << " " << r.params << " " << r.bytes << "\n";
  });
});
