#include "merging/vocab.hpp"

#include <algorithm>
#include <cmath>

#include "harness/core/error.hpp"

namespace bm::merging {

ParamSpec param_weight() {
  return {"weight", ParamType::Float, "1.0", true, "per-expert weight w_k", {}, -1e300, 1e300};
}
ParamSpec param_lambda(double def) {
  return {"lambda", ParamType::Float, std::to_string(def), false, "scale of the merged task vector", {}, -1e300, 1e300};
}
ParamSpec param_density(double def) {
  return {"density", ParamType::Float, std::to_string(def), true, "fraction of each task vector kept", {}, 0.0, 1.0};
}
ParamSpec param_seed() { return {"seed", ParamType::Int, "0", false, "seed of the DARE masks", {}, 0, 9.2e18}; }
ParamSpec param_trim() {
  return {"trim", ParamType::Choice, "tensor", false,
          "TIES trim scope: per tensor (mergekit) or global over the model (MergeLM)", {"tensor", "global"}};
}
ParamSpec param_epsilon(double def) {
  return {"epsilon", ParamType::Float, std::to_string(def), true,
          "DELLA: keep probability ranges over density -+ epsilon by |delta| rank", {}, 0.0, 1.0};
}
ParamSpec param_gamma(double def) {
  return {"gamma", ParamType::Float, std::to_string(def), true, "fraction of the largest |delta| dropped", {}, 0.0, 1.0};
}
ParamSpec param_rescale(bool def) {
  return {"rescale", ParamType::Bool, def ? "true" : "false", false,
          "rescale the kept entries to the task vector's L1 norm (mergekit)", {}, -1e300, 1e300};
}

namespace {

MethodVocab general(const std::string& name, const std::string& summary, std::vector<ParamSpec> params,
                    std::vector<std::string> aliases = {}) {
  MethodVocab m;
  m.name = name;
  m.summary = summary;
  m.params = std::move(params);
  m.aliases = std::move(aliases);
  m.grid_kind = "merge";
  return m;
}

MethodVocab routed(const std::string& name, MethodKind kind, const std::string& summary, std::vector<ParamSpec> params,
                   const std::string& grid_kind) {
  MethodVocab m;
  m.name = name;
  m.summary = summary;
  m.kind = kind;
  m.params = std::move(params);
  m.needs_route = true;
  m.grid_kind = grid_kind;
  return m;
}

std::vector<MethodVocab> make_vocab() {
  // One row per method, in the registry's order (merging/registry.cpp merge_methods()).
  return {
      general("average", "weighted average of the experts (mergekit linear)", {param_weight(), param_lambda(1.0)}),
      general("task_arithmetic", "base + lambda * sum of weighted task vectors", {param_weight(), param_lambda(1.0)}),
      general("ties", "TIES-Merging: trim, elect sign, disjoint mean",
              {param_weight(), param_density(0.5), param_lambda(1.0), param_trim()}),
      general("dare", "DARE: random drop p = 1 - density, rescale 1/(1-p), task arithmetic",
              {param_weight(), param_density(0.5), param_lambda(1.0), param_seed()}, {"dare_linear"}),
      general("dare_ties", "DARE drop/rescale + TIES sign election",
              {param_weight(), param_density(0.5), param_lambda(1.0), param_seed()}),
      routed("routing", MethodKind::Routing, "the full expert selected by --route", {}, "routing"),
      routed("onebit", MethodKind::OneBit,
             "1bit-Merging: base + routed compressed expert + lambda * TIES(other compressed experts)",
             {param_weight(), param_density(1.0), param_lambda(1.0), param_trim()}, "onebit_merging"),
      general("della", "DELLA: rank-based random drop (MagPrune), L1 rescale, TIES sign election, disjoint mean",
              {param_weight(), param_density(0.5), param_epsilon(0.15), param_lambda(1.0), param_rescale(true),
               param_seed()}),
      general("della_linear", "DELLA linear: rank-based random drop (MagPrune), L1 rescale, weighted sum",
              {param_weight(), param_density(0.5), param_epsilon(0.15), param_lambda(1.0), param_rescale(true),
               param_seed()}),
      general("breadcrumbs", "Model Breadcrumbs: drop the largest gamma and the smallest |delta|, weighted sum",
              {param_weight(), param_density(0.5), param_gamma(0.01), param_lambda(1.0), param_rescale(false)}),
      general("breadcrumbs_ties",
              "Model Breadcrumbs + TIES sign election: drop the largest gamma and the smallest |delta|",
              {param_weight(), param_density(0.5), param_gamma(0.01), param_lambda(1.0), param_rescale(false)}),
  };
}

}  // namespace

const std::vector<MethodVocab>& method_vocab() {
  static const std::vector<MethodVocab> v = make_vocab();
  return v;
}

const MethodVocab* find_method_vocab(const std::string& name) {
  for (auto& m : method_vocab())
    if (m.name == name || std::find(m.aliases.begin(), m.aliases.end(), name) != m.aliases.end()) return &m;
  return nullptr;
}

std::vector<std::string> method_names_and_aliases() {
  std::vector<std::string> v;
  for (auto& m : method_vocab()) {
    v.push_back(m.name);
    v.insert(v.end(), m.aliases.begin(), m.aliases.end());
  }
  return v;
}

std::vector<std::string> grid_method_kinds() {
  std::vector<std::string> v;
  for (auto& m : method_vocab())
    if (!m.grid_kind.empty() && std::find(v.begin(), v.end(), m.grid_kind) == v.end()) v.push_back(m.grid_kind);
  return v;
}

std::vector<std::string> grid_merge_method_names() {
  std::vector<std::string> v;
  for (auto& m : method_vocab())
    if (m.grid_kind == "merge") {
      v.push_back(m.name);
      v.insert(v.end(), m.aliases.begin(), m.aliases.end());
    }
  return v;
}

const MethodVocab* grid_method(const std::string& kind, const std::string& method) {
  if (kind == "merge") {
    const MethodVocab* m = find_method_vocab(method);
    return m && m->grid_kind == kind ? m : nullptr;
  }
  for (auto& m : method_vocab())
    if (m.grid_kind == kind) return &m;
  return nullptr;
}

std::vector<std::string> grid_numeric_params(const MethodVocab& m) {
  std::vector<std::string> v;
  for (auto& p : m.params)
    if ((p.type == ParamType::Float || p.type == ParamType::Int) && p.name != "weight") v.push_back(p.name);
  return v;
}

void check_param_value(const MethodVocab& m, const ParamSpec& p, const std::string& where, const std::string& v) {
  auto bad = [&](const std::string& what) { fail(where, "'" + v + "' " + what); };
  switch (p.type) {
    case ParamType::Float: {
      size_t used = 0;
      double d = 0;
      try {
        d = std::stod(v, &used);
      } catch (...) {
        used = 0;
      }
      if (used != v.size() || !std::isfinite(d)) bad("is not a number; give e.g. " + p.default_value);
      if (d < p.min || d > p.max)
        bad("is out of range [" + std::to_string(p.min) + ", " + std::to_string(p.max) + "] for method " + m.name);
      break;
    }
    case ParamType::Int: {
      size_t used = 0;
      try {
        (void)std::stoll(v, &used);
      } catch (...) {
        used = 0;
      }
      if (used != v.size()) bad("is not an integer");
      break;
    }
    case ParamType::Bool:
      if (v != "true" && v != "false") bad("is not true or false");
      break;
    case ParamType::Choice:
      if (std::find(p.choices.begin(), p.choices.end(), v) == p.choices.end()) {
        std::string all;
        for (auto& c : p.choices) all += (all.empty() ? "" : ", ") + c;
        bad("is not one of " + all + did_you_mean(v, p.choices));
      }
      break;
  }
}

}  // namespace bm::merging
