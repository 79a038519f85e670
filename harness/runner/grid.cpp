#include "harness/runner/grid.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/fingerprint.hpp"
#include "harness/models/model_config.hpp"
#include "harness/models/tokenizer_config.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/task.hpp"

namespace bm::runner {

std::string task_version(const std::string& b) {
  // The task's own version (tasks/ bumps it whenever scores could change).
  static std::map<std::string, std::string> cache;
  auto it = cache.find(b);
  if (it != cache.end()) return it->second;
  return cache[b] = bm::make_task(b)->version();
}

std::string variant_template(const Experiment& e, const Variant& v) {
  if (e.eval.template_mode == "none") return "none";
  if (v.single_expert()) return e.family.expert(v.expert)->template_name;
  if (v.routed()) {
    // Each routed group uses its expert's template (model_backend evaluate_routed).
    std::string s;
    for (auto& x : v.experts) s += (s.empty() ? "" : ",") + x + ":" + e.family.expert(x)->template_name;
    return "routed(" + s + ")";
  }
  return "none";
}

std::string model_fingerprint(const Family& f, const ModelRef& m) {
  std::string dir = resolve_model_dir(f, m, repo_root());
  if (!bm::is_directory(dir)) return "hf:" + m.hf_id + "@" + (m.revision.empty() ? "main" : m.revision);
  return "sha256:" + bm::model_fingerprint(dir);  // the one fingerprint (harness/models/fingerprint.hpp)
}

nlohmann::json variant_spec(const Experiment& e, const Variant& v, bool fp) {
  using nlohmann::json;
  json s;
  s["kind"] = v.kind;
  s["family"] = e.family.name;
  s["dtype"] = e.family.dtype;
  auto models = json::object();
  auto add_model = [&](const ModelRef& m) { models[m.name] = fp ? model_fingerprint(e.family, m) : "hf:" + m.hf_id; };
  add_model(e.family.base);
  if (v.single_expert()) {
    s["expert"] = v.expert;
    add_model(*e.family.expert(v.expert));
    if (v.kind == "compressed") s["position"] = v.position;
  } else if (v.kind != "base") {
    s["experts"] = v.experts;
    for (auto& x : v.experts) add_model(*e.family.expert(x));
    if (!v.compress.empty()) s["compress"] = v.compress;
    if (!v.params.empty()) s["params"] = v.params;
    if (!v.weights.empty()) s["weights"] = v.weights;
    if (v.kind == "merge") s["method"] = v.method;
    if (v.kind == "onebit_merging") s["merge_method"] = v.merge_method;
    if (v.routed()) {
      s["router"] = {{"mode", e.router.mode},
                     {"layer", e.router.layer},
                     {"hidden", e.router.hidden},
                     {"epochs", e.router.epochs},
                     {"train_per_domain", e.router.train_per_domain},
                     {"lr", e.router.lr},
                     {"domain_of", e.router.domain_of}};
    }
  }
  if (uses_bitdelta(v))
    if (auto fit = bitdelta_key(e); !fit.is_null()) s["bitdelta_fit"] = fit;
  s["models"] = models;
  return s;
}

bool uses_bitdelta(const Variant& v) {
  auto is_bitdelta = [&](const std::string& pos) {
    return bm::parse_compression(pos, "variants." + v.name).scheme == bm::Scheme::BitDelta;
  };
  if (v.kind == "compressed" && is_bitdelta(v.position)) return true;
  for (auto& [x, pos] : v.compress)
    if (is_bitdelta(pos)) return true;
  return false;
}

nlohmann::json bitdelta_key(const Experiment& e) {
  const BitDeltaSettings& b = e.bitdelta;
  if (b.is_default()) return nullptr;
  return {{"rows", b.calib.rows}, {"seq_len", b.calib.seq_len}, {"steps", b.fit.steps},
          {"batch_size", b.fit.batch_size}, {"lr", b.fit.lr}};
}

BosDecision eval_add_bos(const Experiment& e) {
  BosDecision d;
  if (e.eval.add_bos) {
    d.resolved = true;
    d.add_bos = *e.eval.add_bos;
    d.source = e.file + ": [eval] add_bos";
    return d;
  }
  const std::string root = repo_root();
  const std::string base = resolve_model_dir(e.family, e.family.base, root);
  if (!bm::is_directory(base)) {
    d.source = "tokenizer_config.json of " + base + " (not present yet)";
    return d;
  }
  auto b = bm::resolve_add_bos(std::nullopt, "", base);
  for (auto& x : e.family.experts) {
    const std::string dir = resolve_model_dir(e.family, x, root);
    if (!bm::file_exists(dir + "/tokenizer_config.json")) continue;
    auto c = bm::resolve_add_bos(std::nullopt, "", dir);
    if (c.add_bos != b.add_bos)
      bm::fail(dir + "/tokenizer_config.json", std::string("add_bos = ") + (c.add_bos ? "true" : "false") + " (" +
                                                   c.source + ") but the base's is " + (b.add_bos ? "true" : "false") +
                                                   "; set [eval] add_bos in " + e.file + " to choose one for every model");
  }
  d.resolved = true;
  d.add_bos = b.add_bos;
  d.source = b.source;
  return d;
}

std::vector<Cell> expand_cells(const Experiment& e, bool fp) {
  std::vector<Cell> cells;
  const auto& ev = e.eval;
  const BosDecision bos = eval_add_bos(e);
  const nlohmann::json bos_key = bos.resolved ? nlohmann::json(bos.add_bos) : nlohmann::json("tokenizer_config.json");
  const std::vector<bm::TaskOption> options = bm::all_task_options();
  std::map<std::string, std::set<std::string>> own_options;  // benchmark -> its option keys
  for (auto& b : e.benchmarks)
    for (auto& o : bm::make_task(b)->options()) own_options[b].insert(o.key);
  for (size_t vi = 0; vi < e.variants.size(); ++vi) {
    const Variant& v = e.variants[vi];
    nlohmann::json vs = variant_spec(e, v, fp);
    for (auto& b : e.benchmarks) {
      Cell c;
      c.index = cells.size();
      c.variant_index = vi;
      c.variant = v.name;
      c.benchmark = b;
      c.spec = {{"variant", vs},
                {"benchmark", b},
                {"task_version", task_version(b)},
                {"template", variant_template(e, v)},
                {"settings",
                 {{"add_bos", bos_key},
                  {"limit", ev.limit},
                  {"max_new_tokens", ev.max_new_tokens},
                  {"seed", e.seed},
                  {"backend", e.backend}}}};
      // The tasks' options (Task::options()): each in its own benchmark's cells,
      // and the four older than per-task options in every cell (their keys unchanged).
      for (auto& o : options)
        if (o.in_every_cell_key || own_options[b].count(o.key)) c.spec["settings"][o.key] = ev.task_options.at(o.key);
      // Chat formats as the repos' chat_template / cards give them (BOS text, strip;
      // issue 15): cells of a per-expert template run before that are not reused.
      if (c.spec["template"] != "none") c.spec["template_rev"] = 2;
      c.key = bm::sha256_hex(c.spec.dump()).substr(0, 24);
      cells.push_back(std::move(c));
    }
  }
  return cells;
}

void check_checkpoints(const Experiment& e) {
  std::set<std::string> needed = {"base"};
  for (auto& v : e.variants) {
    if (!v.expert.empty()) needed.insert(v.expert);
    for (auto& x : v.experts) needed.insert(x);
  }
  std::string root = repo_root();
  const Family& f = e.family;
  require_model_present(f, f.base, root);
  ModelConfig base = ModelConfig::from_file(resolve_model_dir(f, f.base, root) + "/config.json");
  for (auto& name : needed) {
    if (name == "base") continue;
    const ModelRef& m = *f.expert(name);
    require_model_present(f, m, root);
    if (m.format == "lora") continue;  // shapes checked when the adapter is applied
    std::string cfg = resolve_model_dir(f, m, root) + "/config.json";
    ModelConfig c = ModelConfig::from_file(cfg);
    auto mismatch = [&](const char* key, int64_t a, int64_t b) {
      if (a != b)
        bm::fail(cfg, std::string(key) + " = " + std::to_string(a) + " but the base has " + std::to_string(b) +
                          "; expert '" + name + "' of family " + f.name + " (" + f.file +
                          ") is not a fine-tune of this base: fix the family file");
    };
    mismatch("hidden_size", c.hidden_size, base.hidden_size);
    mismatch("intermediate_size", c.intermediate_size, base.intermediate_size);
    mismatch("num_hidden_layers", c.num_hidden_layers, base.num_hidden_layers);
    mismatch("num_attention_heads", c.num_attention_heads, base.num_attention_heads);
    mismatch("num_key_value_heads", c.num_key_value_heads, base.num_key_value_heads);
    // Vocab may grow by added tokens (e.g. a pad token); larger vocab is resized at merge time.
    if (c.vocab_size < base.vocab_size) mismatch("vocab_size", c.vocab_size, base.vocab_size);
  }
}

}  // namespace bm::runner
