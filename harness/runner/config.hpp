// Experiment and family configs (TOML). The whole config is parsed and
// validated here, before any weights load: unknown keys are errors that name
// the file and key and suggest the closest valid name.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/train/bitdelta_config.hpp"  // torch-free: BitDelta's fit settings and defaults

namespace bm::runner {

// Model sizes, for storage accounting when config.json is not at hand.
struct ModelShape {
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0;
  bool tie_word_embeddings = false;
  bool known() const { return hidden_size > 0; }
};

struct ModelRef {
  std::string name;        // "base", "chat", "math", "code"
  std::string hf_id;       // paper's Hugging Face id
  std::string revision;    // optional HF revision
  std::string local_name;  // directory name under the models dir
  std::string path;        // explicit path (after ${VAR} expansion); empty = models dir / local_name
  std::string format = "hf";      // "hf" (safetensors or .bin) | "lora" (PEFT adapter on the base)
  std::string template_name = "none";  // prompt template override: none | llama2-chat | mistral-inst
  std::string domain;      // expert domain: chat | math | code (experts only)
};

struct Family {
  std::string file;  // where it was read
  std::string name, architecture, dtype = "float16";
  std::string models_dir_env = "BITMERGE_MODELS_DIR";
  std::string models_dir;  // fallback when the env var is unset (relative to the repo root)
  std::string tokenizer;   // optional tokenizer.model path; default: the base's
  std::string data_dir;    // benchmark files of this family (mini); "" = $BITMERGE_DATA_DIR
  ModelRef base;
  std::vector<ModelRef> experts;  // in file order
  ModelShape shape;
  const ModelRef* expert(const std::string& name) const;
  std::vector<std::string> expert_names() const;
};

// Resolved directory of a model: explicit path, else $<models_dir_env>/<local_name>,
// else <models_dir>/<local_name>. Does not check existence.
// Benchmark data folder: the family's data_dir, else $BITMERGE_DATA_DIR, else <repo>/../shared/data.
std::string family_data_dir(const Family& f);
std::string resolve_model_dir(const Family& f, const ModelRef& m, const std::string& repo_root);
// Throws a bm::Error naming the model and saying where to put it / how to fetch it.
void require_model_present(const Family& f, const ModelRef& m, const std::string& repo_root);

struct PaperRow {
  std::map<std::string, double> scores;  // benchmark -> score, plus optional "average"
};

// One model variant (a table row).
struct Variant {
  std::string name;   // row label, unique
  std::string group;  // "Finetuned" | "Compressed experts" | "Merging methods" | ...
  std::string kind;   // base | expert | compressed | merge | routing | onebit_merging (the last three: merging/vocab.cpp)
  std::string expert;                            // expert / compressed
  std::string position = "none";                 // compressed: none | attention | mlp | linear
  std::string method;                            // merge: a method of merging/vocab.cpp (name or alias)
  std::vector<std::string> experts;              // merge / routing / onebit_merging
  std::map<std::string, std::string> compress;   // expert -> position (merging compressed experts, 1bit-Merging)
  std::map<std::string, double> params;          // method params: lambda, density, ...
  std::map<std::string, double> weights;         // per-expert weights
  std::string merge_method = "ties";             // onebit_merging: how the others merge into the routed base
  PaperRow paper;
  double paper_storage_percent = -1;             // Figure 3 claims (percent of Routing), if any
  double paper_performance_percent = -1;         // Figure 3 claims (percent of Routing's average), if any
  // What the kind says (the merge methods' kinds and routes: merging/vocab.cpp).
  bool single_expert() const { return kind == "expert" || kind == "compressed"; }  // one expert on the base
  bool merges_experts() const;  // merge, routing, onebit_merging: a merge method over `experts`
  bool routed() const;          // routing, onebit_merging: each item goes to the expert its route picks
};

struct RouterSettings {
  std::string mode = "trained";  // trained | oracle
  int layer = 8;                 // hidden state after this many layers (0 = embeddings)
  int hidden = 256;              // MLP hidden width
  int epochs = 30;
  int train_per_domain = 400;    // prompts per domain
  double lr = 1e-3;
  std::map<std::string, std::string> domain_of;  // benchmark -> domain label for oracle / accuracy
};

// Every task option's key -> its default (the registry's Task::options()).
std::map<std::string, std::string> task_option_defaults();

struct EvalSettings {
  // BOS before text requests: set = explicit ([eval] add_bos); unset = the
  // family base's tokenizer_config.json add_bos_token as lm-eval 0.4.x does
  // (eval_add_bos() in grid.hpp resolves it; the mini configs set false).
  std::optional<bool> add_bos;
  int64_t limit = 0;           // first N items per benchmark (0 = all)
  int64_t max_new_tokens = 512;
  int64_t batch_size = 0;      // 0 = auto (GPU memory plan; fixed on CPU). Not part of the cell key: must not change scores
  // The tasks' own options (Task::options(), tasks/): [eval] <key> -> value,
  // every registered option present (its default unless the file sets it).
  std::map<std::string, std::string> task_options = task_option_defaults();
  std::string template_mode = "none";  // none | per-expert (the family's per-expert templates)
};

// [bitdelta]: how the grid fits scheme bitdelta's scales (model_backend.cpp
// bitdelta_file): calibration rows x seq_len tokens of <data_dir>/corpus/<domain>.jsonl,
// steps, batch_size, lr. Defaults: harness/train/bitdelta_config.hpp. Other values
// enter the cell keys of bitdelta variants and the fitted file's name (grid.hpp bitdelta_key).
struct BitDeltaSettings {
  bm::train::BitDeltaCalibration calib;
  bm::train::BitDeltaConfig fit;
  bool is_default() const {
    const BitDeltaSettings d;
    return calib.rows == d.calib.rows && calib.seq_len == d.calib.seq_len && fit.steps == d.fit.steps &&
           fit.batch_size == d.fit.batch_size && fit.lr == d.fit.lr;
  }
};

struct Experiment {
  std::string file, name, title;
  std::string table = "main";  // main | position | storage | routing
  std::string family_ref;      // as written
  Family family;
  std::vector<std::string> benchmarks;
  std::vector<Variant> variants;
  EvalSettings eval;
  RouterSettings router;
  BitDeltaSettings bitdelta;
  uint64_t seed = 0;
  std::string backend = "model";  // model | synthetic (machinery tests only)
  double synthetic_delay_s = 0;
  std::string best_within;        // row group whose best value is marked; "" = all rows
  std::string results_dir;        // default results/<name>
  std::string cells_dir;          // the cell cache; default <results_dir>/cells (`run --cells-dir`: shared by experiments)
  std::string cell_dir() const { return cells_dir.empty() ? results_dir + "/cells" : cells_dir; }
  const Variant* variant(const std::string& name) const;
};

// Benchmarks (names, labels, domains) are the task registry's: tasks/common/task.hpp.

Family load_family(const std::string& path);
// `family` is a path or a name looked up in <repo>/configs/families/<name>.toml
// (relative to the experiment file's ../families first).
// family_override (`bitmerge run --family NAME|FILE`): run the grid on another family
// (a name in configs/families or a family TOML path); empty = the config's `family`.
Experiment load_experiment(const std::string& path, const std::string& family_override = "");
Experiment parse_experiment_text(const std::string& text, const std::string& file,
                                 const std::string& family_override = "");

// Repository root (env BITMERGE_SOURCE_DIR or the compile-time source dir).
std::string repo_root();
// ${VAR} and ${VAR:-default} expansion; throws naming `where` when VAR is unset without default.
std::string expand_env(const std::string& s, const std::string& where);

}  // namespace bm::runner
