// The grid: (model variant x benchmark) cells, each keyed by a hash of what
// can change its score: model fingerprints, variant spec, task version,
// prompt template and eval settings (not batch size, not device).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/runner/config.hpp"

namespace bm::runner {

struct Cell {
  size_t index = 0;        // position in the grid (variant-major)
  size_t variant_index = 0;
  std::string variant;     // variant name
  std::string benchmark;
  std::string key;         // sha256 hex (first 24 chars)
  nlohmann::json spec;     // what the key hashes (stored with the result)
};

// Version of a benchmark's loader+prompt+metric; bump when scores could change.
std::string task_version(const std::string& benchmark);
// Prompt template used for `v` on `benchmark` (per-expert override or "none").
std::string variant_template(const Experiment& e, const Variant& v);

// Fingerprint of a model directory: sha256 of config.json plus, per weight
// file, the full content (files <= 256 MiB) or its header and size (larger).
// When the directory is missing: "hf:<id>@<revision>".
std::string model_fingerprint(const Family& f, const ModelRef& m);

// The variant's spec: its kind/method/params/positions and the fingerprints
// of the models it is built from.
nlohmann::json variant_spec(const Experiment& e, const Variant& v, bool with_fingerprints = true);

std::vector<Cell> expand_cells(const Experiment& e, bool with_fingerprints = true);

// Does the variant use scheme bitdelta (its position, or an expert's in compress)?
bool uses_bitdelta(const Variant& v);
// The experiment's [bitdelta] fit settings as they enter the spec of bitdelta
// variants ("bitdelta_fit") and the fitted file's name: null when they are the
// defaults, so that keys made before [bitdelta] existed (and every key of a
// variant without bitdelta) stay as they were.
nlohmann::json bitdelta_key(const Experiment& e);

// The experiment's BOS choice: [eval] add_bos when set, else the family base's
// tokenizer_config.json (resolve_add_bos, harness/models/tokenizer_config.hpp).
// Fails in one line when a present expert's tokenizer_config.json decides
// otherwise than the base's (set [eval] add_bos to choose one for all). The
// cell key holds the value; before the base is downloaded it holds
// "tokenizer_config.json" (as the model fingerprints, the key changes then).
struct BosDecision {
  bool resolved = false;  // false: base not present yet
  bool add_bos = false;
  std::string source;
};
BosDecision eval_add_bos(const Experiment& e);

// Checks that every checkpoint the grid needs exists and that experts match
// the base (architecture and shapes in config.json). Throws naming the file.
void check_checkpoints(const Experiment& e);

}  // namespace bm::runner
