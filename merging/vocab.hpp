// The merge methods' vocabulary, torch-free (target bm_merging_info): each
// method's name, summary, kind, parameters with types, ranges and defaults,
// its other names (aliases) and the experiment-grid variant kind that runs it.
// One home for these facts: merging/registry.cpp builds every MethodInfo from
// its entry here (and checks at start-up that the two lists match), the CLI
// (`bitmerge merge --method`, `--list-methods`, `--param`) reads them through
// the registry, and the runner's config parser (torch-free, bm_runner_core)
// asks this file for the grid's method names, kinds and numeric parameters.
#pragma once
#include <string>
#include <vector>

namespace bm::merging {

enum class ParamType { Float, Int, Bool, Choice };

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Float;
  std::string default_value;
  bool per_expert = false;
  std::string help;
  std::vector<std::string> choices;  // ParamType::Choice
  double min = -1e300, max = 1e300;  // Float/Int range (inclusive)
};

enum class MethodKind { General, Routing, OneBit };

struct MethodVocab {
  std::string name;
  std::string summary;
  MethodKind kind = MethodKind::General;
  std::vector<ParamSpec> params;
  bool needs_route = false;          // Routing and OneBit: --route picks the expert
  std::vector<std::string> aliases;  // other names for --method and grids (dare_linear = dare)
  // The experiment variant kind that runs it (harness/runner/config.cpp): "merge"
  // (with method = name or an alias), "routing", "onebit_merging".
  std::string grid_kind;
};

// Every method, in the registry's order.
const std::vector<MethodVocab>& method_vocab();
// By name or alias; nullptr when unknown.
const MethodVocab* find_method_vocab(const std::string& name_or_alias);
// Names and aliases of every method (for did-you-mean).
std::vector<std::string> method_names_and_aliases();

// The grid's vocabulary: variant kinds that run a merge method (in order, no
// repeats), and the names (and aliases) accepted as `method` of kind "merge".
std::vector<std::string> grid_method_kinds();
std::vector<std::string> grid_merge_method_names();
// The method a variant of `kind` (with `method` for kind "merge") runs; nullptr
// when the kind runs no merge method or the name is unknown.
const MethodVocab* grid_method(const std::string& kind, const std::string& method);
// The parameters a grid variant can set in `params = { ... }` (numbers, one value
// for every expert): the method's Float / Int parameters but `weight`, which a
// grid gives per expert in `weights = { expert = w }`.
std::vector<std::string> grid_numeric_params(const MethodVocab& m);

// Checks one value against the spec; throws bm::Error naming `where` with the
// type or range (and the method's name).
void check_param_value(const MethodVocab& m, const ParamSpec& p, const std::string& where, const std::string& value);

// Common parameter specs.
ParamSpec param_weight();
ParamSpec param_lambda(double def = 1.0);
ParamSpec param_density(double def);
ParamSpec param_seed();
ParamSpec param_trim();
ParamSpec param_epsilon(double def);  // DELLA: half-width of the keep-probability ramp
ParamSpec param_gamma(double def);    // Breadcrumbs: fraction of the largest |delta| dropped
ParamSpec param_rescale(bool def);    // DELLA / Breadcrumbs: L1 rescale after the drop (mergekit's rescale)

}  // namespace bm::merging
