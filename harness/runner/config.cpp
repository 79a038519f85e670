#include "harness/runner/config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/strings.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/model_config.hpp"
#include "harness/report/claims.hpp"
#include "merging/storage.hpp"
#include "merging/vocab.hpp"
#include "tasks/common/task.hpp"
#include "tasks/common/templates.hpp"

namespace bm::runner {
namespace {

// "<file>: key '<path>': <what>"
[[noreturn]] void key_fail(const std::string& file, const std::string& key, const std::string& what) {
  bm::fail(file, "key '" + key + "': " + what);
}

void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& file,
                const std::string& prefix) {
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      key_fail(file, prefix + key,
               "unknown key" + bm::did_you_mean(key, allowed) + "; valid keys here: " + join(allowed));
    }
  }
}

std::string get_str(const toml::table& t, const std::string& key, const std::string& file, const std::string& prefix,
                    std::optional<std::string> def = std::nullopt) {
  auto* n = t.get(key);
  if (!n) {
    if (def) return *def;
    key_fail(file, prefix + key, "missing; add it");
  }
  if (auto s = n->value<std::string>()) return *s;
  key_fail(file, prefix + key, "must be a string");
}

double get_num(const toml::table& t, const std::string& key, const std::string& file, const std::string& prefix,
               double def) {
  auto* n = t.get(key);
  if (!n) return def;
  if (n->is_integer()) return static_cast<double>(*n->value<int64_t>());
  if (n->is_floating_point()) return *n->value<double>();
  key_fail(file, prefix + key, "must be a number");
}

int64_t get_int(const toml::table& t, const std::string& key, const std::string& file, const std::string& prefix,
                int64_t def) {
  auto* n = t.get(key);
  if (!n) return def;
  if (n->is_integer()) return *n->value<int64_t>();
  key_fail(file, prefix + key, "must be an integer");
}

bool get_bool(const toml::table& t, const std::string& key, const std::string& file, const std::string& prefix,
              bool def) {
  auto* n = t.get(key);
  if (!n) return def;
  if (n->is_boolean()) return *n->value<bool>();
  key_fail(file, prefix + key, "must be true or false");
}

std::vector<std::string> get_str_list(const toml::table& t, const std::string& key, const std::string& file,
                                      const std::string& prefix) {
  std::vector<std::string> out;
  auto* n = t.get(key);
  if (!n) return out;
  auto* arr = n->as_array();
  if (!arr) key_fail(file, prefix + key, "must be an array of strings");
  for (auto&& e : *arr) {
    auto s = e.value<std::string>();
    if (!s) key_fail(file, prefix + key, "must be an array of strings");
    out.push_back(*s);
  }
  return out;
}

const toml::table* get_table(const toml::table& t, const std::string& key, const std::string& file,
                             const std::string& prefix) {
  auto* n = t.get(key);
  if (!n) return nullptr;
  auto* tt = n->as_table();
  if (!tt) key_fail(file, prefix + key, "must be a table");
  return tt;
}

void check_choice(const std::string& v, const std::vector<std::string>& choices, const std::string& file,
                  const std::string& key) {
  if (std::find(choices.begin(), choices.end(), v) == choices.end())
    key_fail(file, key, "'" + v + "' is not one of " + join(choices) + bm::did_you_mean(v, choices));
}

toml::table parse_toml_text(const std::string& text, const std::string& file) {
  try {
    return toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << file << ":" << e.source().begin.line << ":" << e.source().begin.column << ": TOML parse error: "
       << e.description() << "; fix the syntax at that line";
    throw bm::Error(os.str());
  }
}

// Variant kinds: the runner's own (base, expert, compressed: no merge of experts) and
// those of the merge methods' vocabulary (merging/vocab.cpp: merge, routing, onebit_merging).
// That vocabulary also gives kind merge's method names (with aliases) and each
// method's numeric parameters (params = { ... }).
std::vector<std::string> variant_kinds() {
  std::vector<std::string> k = {"base", "expert", "compressed"};
  for (auto& x : bm::merging::grid_method_kinds()) k.push_back(x);
  return k;
}
// "none" or a chat format of tasks/common/templates.hpp (one home for the names).
std::vector<std::string> template_names() {
  std::vector<std::string> t = {"none"};
  for (const auto& x : bm::chat_format_names()) t.push_back(x);
  return t;
}

ModelRef parse_model(const toml::table& t, const std::string& name, const std::string& file,
                     const std::string& prefix) {
  check_keys(t, {"hf_id", "revision", "local_name", "path", "format", "template", "domain"}, file, prefix);
  ModelRef m;
  m.name = name;
  m.hf_id = get_str(t, "hf_id", file, prefix, "");
  m.revision = get_str(t, "revision", file, prefix, "");
  m.path = expand_env(get_str(t, "path", file, prefix, ""), file + ": key '" + prefix + "path'");
  m.local_name = get_str(t, "local_name", file, prefix, "");
  if (m.local_name.empty() && !m.hf_id.empty()) m.local_name = m.hf_id.substr(m.hf_id.find('/') + 1);
  if (m.local_name.empty() && m.path.empty())
    key_fail(file, prefix + "hf_id", "a model needs hf_id, local_name or path");
  m.format = get_str(t, "format", file, prefix, "hf");
  check_choice(m.format, {"hf", "lora"}, file, prefix + "format");
  m.template_name = get_str(t, "template", file, prefix, "none");
  check_choice(m.template_name, template_names(), file, prefix + "template");
  m.domain = get_str(t, "domain", file, prefix, name);
  return m;
}

}  // namespace

std::string repo_root() {
  if (const char* e = std::getenv("BITMERGE_SOURCE_DIR"); e && *e) return e;
#ifdef BITMERGE_SOURCE_DIR
  return BITMERGE_SOURCE_DIR;
#else
  return ".";
#endif
}

std::string expand_env(const std::string& s, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 2, "${") == 0) {
      size_t end = s.find('}', i);
      if (end == std::string::npos) bm::fail(where, "unclosed ${ in '" + s + "'");
      std::string expr = s.substr(i + 2, end - i - 2), def;
      bool has_def = false;
      if (auto p = expr.find(":-"); p != std::string::npos) def = expr.substr(p + 2), expr = expr.substr(0, p), has_def = true;
      const char* v = std::getenv(expr.c_str());
      if (v && *v)
        out += v;
      else if (has_def)
        out += def;
      else
        bm::fail(where, "environment variable " + expr + " is not set; export it or give a default ${" + expr +
                            ":-...}");
      i = end + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

const ModelRef* Family::expert(const std::string& n) const {
  for (auto& e : experts)
    if (e.name == n) return &e;
  return nullptr;
}
std::vector<std::string> Family::expert_names() const {
  std::vector<std::string> v;
  for (auto& e : experts) v.push_back(e.name);
  return v;
}

bool Variant::merges_experts() const { return bm::merging::grid_method(kind, method) != nullptr; }
bool Variant::routed() const {
  const bm::merging::MethodVocab* m = bm::merging::grid_method(kind, method);
  return m && m->needs_route;
}

std::map<std::string, std::string> task_option_defaults() {
  std::map<std::string, std::string> d;
  for (auto& o : bm::all_task_options()) d[o.key] = o.default_value;
  return d;
}

const Variant* Experiment::variant(const std::string& n) const {
  for (auto& v : variants)
    if (v.name == n) return &v;
  return nullptr;
}

std::string resolve_model_dir(const Family& f, const ModelRef& m, const std::string& root) {
  if (!m.path.empty()) {
    if (m.path[0] == '/') return m.path;
    return bm::parent_dir(f.file) + "/" + m.path;
  }
  if (!f.models_dir_env.empty())
    if (const char* e = std::getenv(f.models_dir_env.c_str()); e && *e) return std::string(e) + "/" + m.local_name;
  std::string d = f.models_dir.empty() ? "models" : f.models_dir;
  if (d[0] != '/') d = root + "/" + d;
  return d + "/" + m.local_name;
}

std::string family_data_dir(const Family& f) { return bm::resolve_data_dir(f.data_dir, {repo_root()}); }

void require_model_present(const Family& f, const ModelRef& m, const std::string& root) {
  std::string dir = resolve_model_dir(f, m, root);
  std::string probe = dir + (m.format == "lora" ? "/adapter_config.json" : "/config.json");
  if (m.format == "lora" && !bm::file_exists(probe) && bm::file_exists(dir + "/config.json"))
    bm::fail(f.file + ": " + m.name + ".format", "is \"lora\" but " + dir +
                                                  " holds a full model (config.json, no adapter_config.json), whatever its "
                                                  "name says; set format = \"hf\"");
  if (!bm::file_exists(probe)) {
    std::string how = m.hf_id.empty() ? "build it first"
                                      : "download " + m.hf_id + " there (`bitmerge fetch " + m.hf_id + " " + dir +
                                            "`) or set " + f.models_dir_env + " to the folder holding " + m.local_name;
    bm::fail(probe, "checkpoint for " + f.name + "/" + m.name + " not found; " + how);
  }
}

Family load_family(const std::string& path) {
  std::string text = bm::read_text_file(path);
  toml::table t = parse_toml_text(text, path);
  check_keys(t, {"name", "architecture", "dtype", "models_dir_env", "models_dir", "tokenizer", "data_dir", "base", "experts", "shape"},
             path, "");
  Family f;
  f.file = path;
  f.name = get_str(t, "name", path, "");
  f.architecture = get_str(t, "architecture", path, "", "llama");
  check_choice(f.architecture, bm::model_types(), path, "architecture");
  f.dtype = get_str(t, "dtype", path, "", "float16");
  check_choice(f.dtype, {"float16", "bfloat16", "float32"}, path, "dtype");
  f.models_dir_env = get_str(t, "models_dir_env", path, "", "BITMERGE_MODELS_DIR");
  f.models_dir = expand_env(get_str(t, "models_dir", path, "", ""), path + ": key 'models_dir'");
  f.tokenizer = expand_env(get_str(t, "tokenizer", path, "", ""), path + ": key 'tokenizer'");
  f.data_dir = expand_env(get_str(t, "data_dir", path, "", ""), path + ": key 'data_dir'");
  if (!f.data_dir.empty() && f.data_dir[0] != '/') f.data_dir = bm::parent_dir(path) + "/" + f.data_dir;
  auto* base = get_table(t, "base", path, "");
  if (!base) key_fail(path, "base", "missing; add a [base] table with hf_id");
  f.base = parse_model(*base, "base", path, "base.");
  auto* ex = get_table(t, "experts", path, "");
  if (!ex || ex->empty()) key_fail(path, "experts", "missing; add [experts.chat], [experts.math], [experts.code]");
  for (auto&& [k, v] : *ex) {
    std::string name(k.str());
    auto* et = v.as_table();
    if (!et) key_fail(path, "experts." + name, "must be a table");
    f.experts.push_back(parse_model(*et, name, path, "experts." + name + "."));
  }
  if (auto* sh = get_table(t, "shape", path, "")) {
    check_keys(*sh, {"preset", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "tie_word_embeddings"},
               path, "shape.");
    // preset = one of merging/storage.cpp's family presets (their one home); any key below overrides it.
    ModelShape d;
    const std::string preset = get_str(*sh, "preset", path, "shape.", "");
    if (!preset.empty()) {
      check_choice(preset, bm::merging::family_presets(), path, "shape.preset");
      const bm::ModelConfig c = bm::merging::family_preset(preset);
      d.vocab_size = c.vocab_size, d.hidden_size = c.hidden_size, d.intermediate_size = c.intermediate_size;
      d.num_hidden_layers = c.num_hidden_layers, d.num_attention_heads = c.num_attention_heads;
      d.num_key_value_heads = c.num_key_value_heads, d.tie_word_embeddings = c.tie_word_embeddings;
    }
    f.shape.vocab_size = get_int(*sh, "vocab_size", path, "shape.", d.vocab_size);
    f.shape.hidden_size = get_int(*sh, "hidden_size", path, "shape.", d.hidden_size);
    f.shape.intermediate_size = get_int(*sh, "intermediate_size", path, "shape.", d.intermediate_size);
    f.shape.num_hidden_layers = get_int(*sh, "num_hidden_layers", path, "shape.", d.num_hidden_layers);
    f.shape.num_attention_heads = get_int(*sh, "num_attention_heads", path, "shape.", d.num_attention_heads);
    f.shape.num_key_value_heads =
        get_int(*sh, "num_key_value_heads", path, "shape.",
                preset.empty() ? f.shape.num_attention_heads : d.num_key_value_heads);
    f.shape.tie_word_embeddings = get_bool(*sh, "tie_word_embeddings", path, "shape.", d.tie_word_embeddings);
  }
  return f;
}

namespace {

std::string find_family_file(const std::string& ref, const std::string& exp_file) {
  if (ref.find('/') != std::string::npos || (ref.size() > 5 && ref.substr(ref.size() - 5) == ".toml")) {
    if (ref[0] == '/' || bm::file_exists(ref)) return ref;
    return bm::parent_dir(exp_file) + "/" + ref;
  }
  std::string a = bm::parent_dir(exp_file) + "/../families/" + ref + ".toml";
  if (bm::file_exists(a)) return a;
  std::string b = repo_root() + "/configs/families/" + ref + ".toml";
  if (bm::file_exists(b)) return b;
  bm::fail(exp_file, "key 'family': no family file '" + ref + ".toml' in " + bm::parent_dir(exp_file) +
                         "/../families or " + repo_root() + "/configs/families; check the name");
}

void parse_paper(const toml::table& t, PaperRow& row, const std::vector<std::string>& benchmarks,
                 const std::string& file, const std::string& prefix) {
  std::vector<std::string> allowed = bm::paper_task_names();
  allowed.push_back("average");
  for (auto& b : benchmarks)
    if (std::find(allowed.begin(), allowed.end(), b) == allowed.end()) allowed.push_back(b);
  check_keys(t, allowed, file, prefix);
  for (auto&& [k, v] : t) row.scores[std::string(k.str())] = get_num(t, std::string(k.str()), file, prefix, 0);
}

Variant parse_variant(const toml::table& t, size_t idx, const Experiment& e, const std::string& file) {
  std::string prefix = "variants[" + std::to_string(idx) + "].";
  if (auto* n = t.get("name"); n && n->is_string()) prefix = "variants." + *n->value<std::string>() + ".";
  check_keys(t, {"name", "group", "kind", "expert", "position", "method", "experts", "compress", "params", "weights",
                 "merge_method", "paper", "paper_storage_percent", "paper_performance_percent"},
             file, prefix);
  Variant v;
  v.name = get_str(t, "name", file, prefix);
  prefix = "variants." + v.name + ".";
  v.group = get_str(t, "group", file, prefix, "");
  v.kind = get_str(t, "kind", file, prefix);
  check_choice(v.kind, variant_kinds(), file, prefix + "kind");
  auto experts = e.family.expert_names();
  auto need_expert = [&](const std::string& x, const std::string& key) {
    if (!e.family.expert(x))
      key_fail(file, prefix + key,
               "expert '" + x + "' is not in family " + e.family.name + " (" + e.family.file + ": " + join(experts) +
                   ")" + bm::did_you_mean(x, experts));
  };
  v.expert = get_str(t, "expert", file, prefix, "");
  v.position = get_str(t, "position", file, prefix, "none");
  // position[:scheme] (harness/models/arch.hpp parse_compression): e.g. "attention", "mlp:ternary=0.1"
  (void)bm::parse_compression(v.position, file + ": key '" + prefix + "position'");
  v.method = get_str(t, "method", file, prefix, "");
  if (v.kind == "merge") {
    const auto methods = bm::merging::grid_merge_method_names();
    if (v.method.empty()) key_fail(file, prefix + "method", "missing; one of " + join(methods));
    check_choice(v.method, methods, file, prefix + "method");
  }
  v.merge_method = get_str(t, "merge_method", file, prefix, "ties");
  // 1bit-Merging = routed base + TIES of the other compressed task vectors (merging's "onebit").
  check_choice(v.merge_method, {"ties"}, file, prefix + "merge_method");
  v.experts = get_str_list(t, "experts", file, prefix);
  if (auto* c = get_table(t, "compress", file, prefix))
    for (auto&& [k, val] : *c) {
      std::string x(k.str());
      need_expert(x, "compress." + x);
      auto s = val.value<std::string>();
      if (!s) key_fail(file, prefix + "compress." + x, "must be a position string");
      (void)bm::parse_compression(*s, file + ": key '" + prefix + "compress." + x + "'");
      v.compress[x] = *s;
    }
  for (const char* tabname : {"params", "weights"}) {
    if (auto* p = get_table(t, tabname, file, prefix)) {
      if (std::string(tabname) == "params") {  // the numeric parameters of the variant's merge method
        const bm::merging::MethodVocab* m = bm::merging::grid_method(v.kind, v.method);
        const auto numeric = m ? bm::merging::grid_numeric_params(*m) : std::vector<std::string>{};
        if (numeric.empty() && !p->empty())
          key_fail(file, prefix + "params", "kind '" + v.kind + "' " + (m ? "(method " + m->name + ") " : "") +
                                                "takes no numeric parameters; remove params");
        check_keys(*p, numeric, file, prefix + "params.");
      }
      for (auto&& [k, val] : *p) {
        std::string key(k.str());
        if (std::string(tabname) == "weights") need_expert(key, "weights." + key);
        double d = get_num(*p, key, file, prefix + tabname + ".", 0);
        (std::string(tabname) == "params" ? v.params : v.weights)[key] = d;
      }
    }
  }
  if (auto* p = get_table(t, "paper", file, prefix)) parse_paper(*p, v.paper, e.benchmarks, file, prefix + "paper.");
  v.paper_storage_percent = get_num(t, "paper_storage_percent", file, prefix, -1);
  v.paper_performance_percent = get_num(t, "paper_performance_percent", file, prefix, -1);

  if (v.single_expert()) {
    if (v.expert.empty()) key_fail(file, prefix + "expert", "missing; kind '" + v.kind + "' needs an expert");
    need_expert(v.expert, "expert");
  } else if (v.merges_experts()) {
    if (v.experts.empty()) v.experts = experts;
    for (auto& x : v.experts) need_expert(x, "experts");
    if (v.kind == "onebit_merging")
      for (auto& x : v.experts)
        if (!v.compress.count(x))
          key_fail(file, prefix + "compress", "1bit-Merging needs a compression position for expert '" + x +
                                                  "' (e.g. compress = { " + x + " = \"attention\" })");
  }
  if (v.kind == "compressed" && v.position == "none" && false) {}
  return v;
}

}  // namespace

Experiment parse_experiment_text(const std::string& text, const std::string& file, const std::string& family_override) {
  toml::table t = parse_toml_text(text, file);
  check_keys(t, {"name", "title", "table", "family", "benchmarks", "variants", "eval", "router", "bitdelta", "seed",
                 "backend", "synthetic_delay_s", "best_within", "results_dir", "claims"},
             file, "");
  bm::report::parse_claims_text(text, file);  // [[claims]] (read by `bitmerge claims`): checked here, fail fast
  Experiment e;
  e.file = file;
  e.name = get_str(t, "name", file, "");
  e.title = get_str(t, "title", file, "", e.name);
  e.table = get_str(t, "table", file, "", "main");
  check_choice(e.table, {"main", "position", "storage", "routing", "ablation"}, file, "table");
  e.family_ref = get_str(t, "family", file, "");
  if (!family_override.empty()) {  // `bitmerge run --family`: the same grid on another family
    const bool is_path = family_override.find('/') != std::string::npos ||
                         (family_override.size() > 5 && family_override.substr(family_override.size() - 5) == ".toml");
    if (is_path && !bm::file_exists(family_override))
      bm::fail("--family", "no family file '" + family_override + "'; pass a family TOML or a name in configs/families");
    e.family_ref = family_override;
  }
  e.family = load_family(find_family_file(e.family_ref, file));
  e.benchmarks = get_str_list(t, "benchmarks", file, "");
  if (e.benchmarks.empty()) e.benchmarks = bm::paper_task_names();
  std::vector<std::string> known = bm::task_names();  // any registered benchmark; default the paper's seven
  for (auto& b : e.benchmarks) check_choice(b, known, file, "benchmarks");
  e.seed = static_cast<uint64_t>(get_int(t, "seed", file, "", 0));
  e.backend = get_str(t, "backend", file, "", "model");
  check_choice(e.backend, {"model", "synthetic"}, file, "backend");
  e.synthetic_delay_s = get_num(t, "synthetic_delay_s", file, "", 0);
  e.best_within = get_str(t, "best_within", file, "", "");
  e.results_dir = get_str(t, "results_dir", file, "", "");
  if (auto* ev = get_table(t, "eval", file, "")) {
    // The runner's own keys, then each benchmark's options (Task::options(): names, values, defaults).
    std::vector<std::string> eval_keys = {"add_bos", "limit", "max_new_tokens", "batch_size", "template_mode"};
    const std::vector<bm::TaskOption> options = bm::all_task_options();
    for (auto& o : options) eval_keys.push_back(o.key);
    check_keys(*ev, eval_keys, file, "eval.");
    auto& s = e.eval;
    if (ev->get("add_bos")) s.add_bos = get_bool(*ev, "add_bos", file, "eval.", false);
    s.limit = get_int(*ev, "limit", file, "eval.", s.limit);
    s.max_new_tokens = get_int(*ev, "max_new_tokens", file, "eval.", s.max_new_tokens);
    s.batch_size = get_int(*ev, "batch_size", file, "eval.", s.batch_size);
    for (auto& o : options) {
      std::string& v = s.task_options[o.key];
      v = get_str(*ev, o.key, file, "eval.", o.default_value);
      check_choice(v, o.values, file, "eval." + o.key);
    }
    s.template_mode = get_str(*ev, "template_mode", file, "eval.", s.template_mode);
    check_choice(s.template_mode, {"none", "per-expert"}, file, "eval.template_mode");
    if (s.limit < 0) key_fail(file, "eval.limit", "must be >= 0 (0 = all items)");
    if (s.batch_size < 0) key_fail(file, "eval.batch_size", "must be >= 0 (0 = automatic from GPU memory)");
  }
  if (auto* r = get_table(t, "router", file, "")) {
    check_keys(*r, {"mode", "layer", "hidden", "epochs", "train_per_domain", "lr", "domain_of"}, file, "router.");
    auto& s = e.router;
    s.mode = get_str(*r, "mode", file, "router.", s.mode);
    check_choice(s.mode, {"trained", "oracle"}, file, "router.mode");
    s.layer = static_cast<int>(get_int(*r, "layer", file, "router.", s.layer));
    s.hidden = static_cast<int>(get_int(*r, "hidden", file, "router.", s.hidden));
    s.epochs = static_cast<int>(get_int(*r, "epochs", file, "router.", s.epochs));
    s.train_per_domain = static_cast<int>(get_int(*r, "train_per_domain", file, "router.", s.train_per_domain));
    s.lr = get_num(*r, "lr", file, "router.", s.lr);
    if (s.layer < 0) key_fail(file, "router.layer", "must be >= 0 (0 = embeddings)");
    if (auto* d = get_table(*r, "domain_of", file, "router."))
      for (auto&& [k, v] : *d) s.domain_of[std::string(k.str())] = get_str(*d, std::string(k.str()), file, "router.domain_of.");
  }
  if (auto* bd = get_table(t, "bitdelta", file, "")) {  // scheme bitdelta's fit in the grid
    check_keys(*bd, {"rows", "seq_len", "steps", "batch_size", "lr"}, file, "bitdelta.");
    auto& s = e.bitdelta;
    s.calib.rows = get_int(*bd, "rows", file, "bitdelta.", s.calib.rows);
    s.calib.seq_len = get_int(*bd, "seq_len", file, "bitdelta.", s.calib.seq_len);
    s.fit.steps = get_int(*bd, "steps", file, "bitdelta.", s.fit.steps);
    s.fit.batch_size = get_int(*bd, "batch_size", file, "bitdelta.", s.fit.batch_size);
    s.fit.lr = get_num(*bd, "lr", file, "bitdelta.", s.fit.lr);
    if (s.calib.rows < 1) key_fail(file, "bitdelta.rows", "must be >= 1 (calibration rows)");
    if (s.calib.seq_len < 2) key_fail(file, "bitdelta.seq_len", "must be >= 2 (tokens per calibration row)");
    if (s.fit.steps < 0) key_fail(file, "bitdelta.steps", "must be >= 0 (0 = keep alpha = mean|delta|)");
    if (s.fit.batch_size < 1) key_fail(file, "bitdelta.batch_size", "must be >= 1 (rows per step)");
    if (!(s.fit.lr > 0)) key_fail(file, "bitdelta.lr", "must be > 0 (Adam learning rate of the scales)");
  }
  // Default benchmark -> domain: the task's own (the paper's experts).
  for (auto& b : e.benchmarks)
    if (!e.router.domain_of.count(b)) e.router.domain_of[b] = bm::make_task(b)->domain();

  auto* vs = t.get("variants");
  if (!vs || !vs->as_array() || vs->as_array()->empty())
    key_fail(file, "variants", "missing; add [[variants]] tables (name, kind, ...)");
  size_t i = 0;
  std::set<std::string> names;
  for (auto&& n : *vs->as_array()) {
    auto* vt = n.as_table();
    if (!vt) key_fail(file, "variants[" + std::to_string(i) + "]", "must be a table ([[variants]])");
    Variant v = parse_variant(*vt, i++, e, file);
    if (!names.insert(v.name).second) key_fail(file, "variants." + v.name, "duplicate variant name; rename one");
    e.variants.push_back(std::move(v));
  }
  for (auto& v : e.variants)
    if (v.routed())
      for (auto& x : v.experts) {
        bool has = false;
        for (auto& [b, d] : e.router.domain_of) has |= d == e.family.expert(x)->domain;
        if (!has && e.router.mode == "oracle")
          key_fail(file, "router.domain_of", "no benchmark maps to expert '" + x + "' for oracle routing");
      }
  if (e.results_dir.empty()) e.results_dir = repo_root() + "/results/" + e.name;
  return e;
}

Experiment load_experiment(const std::string& path, const std::string& family_override) {
  return parse_experiment_text(bm::read_text_file(path), path, family_override);
}

}  // namespace bm::runner
