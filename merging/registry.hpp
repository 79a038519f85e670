// Merge methods: an explicit registry (methods/*.cpp, one file each) with
// typed parameters and defaults. Per-expert parameters (weight, density) can
// be overridden per expert ("math.density=0.3"); the others are global.
// TA, TIES and DARE are one generalized routine (general.hpp); routing and
// onebit (1bit-Merging) compose it.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "merging/task_vector.hpp"
#include "merging/vocab.hpp"  // ParamSpec, MethodKind, the methods' names and parameters

namespace bm::merging {

// Validated parameter values of one merge.
class Params {
 public:
  double f(const std::string& key, const std::string& expert = "") const;
  int64_t i(const std::string& key) const;
  bool b(const std::string& key) const;
  const std::string& s(const std::string& key) const;
  bool has(const std::string& key) const { return global_.count(key) > 0; }
  std::map<std::string, std::string> global_;
  std::map<std::string, std::map<std::string, std::string>> per_expert_;  // expert -> key -> value
};

// Everything one tensor's merge needs.
class DropMaskPool;  // merging/general.hpp

struct TensorJob {
  std::string name;
  Role role = Role::Other;
  torch::Tensor base;                     // fp32, on the compute device
  std::vector<Delta> deltas;              // per expert, on the compute device
  std::vector<std::string> expert_names;  // same order
  const Params* params = nullptr;
  int route = -1;                                 // index of the routed expert, -1 if none
  const std::vector<double>* global_thresholds = nullptr;  // per expert |delta| cut (trim=global)
  // Row-chunked merges (Merger::tensor on large tensors): the job holds rows
  // [row0, row0 + base.size(0)) of the tensor. Per-tensor TIES cuts are
  // computed over the whole tensor beforehand; `need` (ties at the cut still
  // to keep, in index order) is consumed chunk by chunk. DARE generators are
  // created on first use and consumed chunk by chunk in row order, so the
  // masks equal the whole-tensor ones.
  struct TrimCut {
    bool active = false;
    float thr = 0;
    int64_t need = 0;
  };
  std::vector<TrimCut>* tensor_cuts = nullptr;     // per expert
  std::vector<at::Generator>* dare_gens = nullptr;  // per expert
  // Whole-tensor merges: DARE keep masks drawn ahead on other threads (Merger), else null.
  DropMaskPool* drop_masks = nullptr;
};

using TensorMerge = std::function<torch::Tensor(const TensorJob&)>;  // returns the merged fp32 tensor

// A method: its vocabulary (merging/vocab.cpp: name, summary, kind, parameters,
// aliases, grid kind) and how it merges.
struct MethodInfo : MethodVocab {
  bool magnitude_trim = false;  // per-tensor TIES trim (Merger precomputes cuts for row chunks)
  bool whole_tensor = false;    // merge() needs whole tensors (no row chunks): e.g. a per-tensor sort or L1 norm
  bool random_drop = false;     // DARE's seeded drop masks (Merger draws them ahead, several at once)
  TensorMerge merge;
  // Optional check of the resolved parameters together (resolve_params calls it);
  // throws bm::Error naming the --param.
  std::function<void(const Params&, const std::vector<std::string>& expert_names)> validate;
};
// A MethodInfo holding the vocabulary entry `name` (methods/*.cpp start from it).
MethodInfo method_info(const std::string& name);

// The registry, in a fixed order.
const std::vector<MethodInfo>& merge_methods();
// By name or alias (dare_linear); throws bm::Error with the closest name for unknown methods.
const MethodInfo& find_method(const std::string& name);
std::vector<std::string> method_names();

// Parses "key=value" / "expert.key=value" settings against the method's
// specs (unknown key -> error with the closest name; bad value -> error with
// the type/range), fills defaults.
Params resolve_params(const MethodInfo& m, const std::map<std::string, std::string>& settings,
                      const std::vector<std::string>& expert_names);

// Method constructors (methods/*.cpp).
MethodInfo method_average();
MethodInfo method_task_arithmetic();
MethodInfo method_ties();
MethodInfo method_dare();
MethodInfo method_dare_ties();
MethodInfo method_routing();
MethodInfo method_onebit();
MethodInfo method_della();
MethodInfo method_della_linear();
MethodInfo method_breadcrumbs();
MethodInfo method_breadcrumbs_ties();

}  // namespace bm::merging
