// bitmerge inspect: what a model directory holds (architecture, sizes, roles),
// or with --task-vectors what a family's task vectors look like (relative
// norms, cosines, sign agreement, zeros per position; merging/tv_stats.hpp).
// Both read weights and report on them without writing models, so they are
// one verb; `storage` stays the byte accounting computed from shapes.
// With --shape, the config.json, tensors and parameter count of a preset size
// (merging/storage.cpp family_preset) as JSON: the bench scripts' random
// models take their shapes from here (bench/gpu/make_random_model.py).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/shapes.hpp"
#include "harness/runner/config.hpp"
#include "merging/api.hpp"
#include "merging/storage.hpp"
#include "merging/tv_stats.hpp"

namespace {

struct InspectArgs {
  std::string model, base, family, json, shape;
  std::vector<std::string> experts, set;
  int64_t layers = 0;
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

// --shape NAME [--layers N] [--set key=N ...]: the preset's config.json (as
// this program writes config.json), parameter count and tensors, as JSON.
void print_shape(const InspectArgs& a) {
  if (!a.model.empty() || a.task_vectors)
    bm::fail("inspect --shape", "--shape describes a preset size; drop --model / --task-vectors");
  const auto presets = bm::merging::family_presets();
  if (std::find(presets.begin(), presets.end(), a.shape) == presets.end()) {
    std::string all;
    for (auto& x : presets) all += (all.empty() ? "" : ", ") + x;
    bm::fail("--shape " + a.shape, "unknown preset" + bm::did_you_mean(a.shape, presets) + "; use one of " + all);
  }
  bm::ModelConfig c = bm::merging::family_preset(a.shape);
  const std::vector<std::string> keys = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                         "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window"};
  int64_t* field[] = {&c.vocab_size, &c.hidden_size, &c.intermediate_size, &c.num_hidden_layers,
                      &c.num_attention_heads, &c.num_key_value_heads, &c.head_dim, &c.sliding_window};
  bool head_dim_set = false;
  for (const auto& kv : a.set) {
    const size_t eq = kv.find('=');
    const std::string k = kv.substr(0, eq);
    auto it = std::find(keys.begin(), keys.end(), k);
    if (eq == std::string::npos || it == keys.end())
      bm::fail("--set " + kv, "expected KEY=N with KEY one of " + [&] {
        std::string s;
        for (auto& x : keys) s += (s.empty() ? "" : ", ") + x;
        return s;
      }() + bm::did_you_mean(k, keys));
    int64_t v = 0;
    try {
      size_t used = 0;
      v = std::stoll(kv.substr(eq + 1), &used);
      if (used != kv.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      bm::fail("--set " + kv, "the value must be an integer");
    }
    if (v < 0 || (v == 0 && k != "sliding_window")) bm::fail("--set " + kv, "must be > 0 (sliding_window: 0 = none)");
    *field[it - keys.begin()] = v;
    head_dim_set |= k == "head_dim";
  }
  if (a.layers < 0) bm::fail("--layers", "must be >= 1 (0 = the preset's)");
  if (a.layers > 0) c.num_hidden_layers = a.layers;
  if (!head_dim_set) c.head_dim = c.hidden_size / c.num_attention_heads;  // the preset's rule at any width
  if (c.hidden_size % c.num_attention_heads != 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    bm::fail("inspect --shape " + a.shape, "hidden_size must divide by num_attention_heads, and the heads by "
                                           "num_key_value_heads; fix --set");
  nlohmann::json j;
  j["shape"] = a.shape;
  j["config"] = nlohmann::json::parse(c.to_json_text());
  j["parameters"] = c.parameter_count();
  j["tensors"] = nlohmann::json::array();
  for (const auto& t : bm::model_tensors(c)) j["tensors"].push_back({t.name, t.shape});
  const std::string text = j.dump() + "\n";
  if (!a.json.empty()) bm::write_file_atomic(a.json, text);
  std::cout << text;
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
  sub->add_option("--json", a->json, "--task-vectors / --shape: also write the JSON here (atomic)");
  sub->add_option("--shape", a->shape,
                  "a preset size (" + [] {
                    std::string s;
                    for (auto& x : bm::merging::family_presets()) s += (s.empty() ? "" : ", ") + x;
                    return s;
                  }() + "): print its config.json, parameter count and tensors as JSON");
  sub->add_option("--layers", a->layers, "--shape: decoder layers (default: the preset's)");
  sub->add_option("--set", a->set, "--shape: KEY=N size overrides (hidden_size, intermediate_size, ...), repeatable");
  sub->add_option("--chunk-mib", a->chunk_mib, "--task-vectors: MiB of float64 per model read at once (default 16)");
  sub->callback([a] {
    if (!a->shape.empty()) return print_shape(*a);
    if (a->layers != 0 || !a->set.empty()) bm::fail("inspect --layers/--set", "these go with --shape NAME");
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
