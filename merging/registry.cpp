#include "merging/registry.hpp"

#include <cmath>
#include <set>

#include "harness/core/error.hpp"

namespace bm::merging {

const std::vector<MethodInfo>& merge_methods() {
  // The explicit registry: one line per method (methods/<name>.cpp).
  static const std::vector<MethodInfo> methods{
      method_average(), method_task_arithmetic(), method_ties(), method_dare(),
      method_dare_ties(), method_routing(), method_onebit(),
      method_della(), method_della_linear(), method_breadcrumbs(), method_breadcrumbs_ties(),
  };
  return methods;
}

std::vector<std::string> method_names() {
  std::vector<std::string> v;
  for (auto& m : merge_methods()) v.push_back(m.name);
  return v;
}

const MethodInfo& find_method(const std::string& name) {
  for (auto& m : merge_methods())
    if (m.name == name) return m;
  std::string all;
  for (auto& n : method_names()) all += (all.empty() ? "" : ", ") + n;
  fail("--method " + name, "unknown merge method" + did_you_mean(name, method_names()) + "; known: " + all);
}

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

static const ParamSpec* find_spec(const MethodInfo& m, const std::string& key) {
  for (auto& p : m.params)
    if (p.name == key) return &p;
  return nullptr;
}

static void check_value(const MethodInfo& m, const ParamSpec& p, const std::string& where, const std::string& v) {
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

Params resolve_params(const MethodInfo& m, const std::map<std::string, std::string>& settings,
                      const std::vector<std::string>& expert_names) {
  Params P;
  std::vector<std::string> keys;
  for (auto& p : m.params) {
    keys.push_back(p.name);
    P.global_[p.name] = p.default_value;
  }
  for (auto& [key, value] : settings) {
    std::string expert, k = key;
    auto dot = key.find('.');
    if (dot != std::string::npos) {
      expert = key.substr(0, dot);
      k = key.substr(dot + 1);
      if (std::find(expert_names.begin(), expert_names.end(), expert) == expert_names.end())
        fail("--param " + key, "no expert named '" + expert + "'" + did_you_mean(expert, expert_names) +
                                   "; per-expert parameters are written <expert>.<param>=<value>");
    }
    const ParamSpec* spec = find_spec(m, k);
    if (!spec) {
      std::string all;
      for (auto& n : keys) all += (all.empty() ? "" : ", ") + n;
      fail("--param " + key, "method " + m.name + " has no parameter '" + k + "'" + did_you_mean(k, keys) +
                                 "; its parameters: " + (all.empty() ? "none" : all));
    }
    if (!expert.empty() && !spec->per_expert)
      fail("--param " + key, "'" + k + "' is a global parameter of " + m.name + "; write --param " + k + "=" + value);
    check_value(m, *spec, "--param " + key, value);
    if (expert.empty())
      P.global_[k] = value;
    else
      P.per_expert_[expert][k] = value;
  }
  if (m.validate) m.validate(P, expert_names);
  return P;
}

double Params::f(const std::string& key, const std::string& expert) const {
  if (!expert.empty()) {
    auto e = per_expert_.find(expert);
    if (e != per_expert_.end()) {
      auto it = e->second.find(key);
      if (it != e->second.end()) return std::stod(it->second);
    }
  }
  auto it = global_.find(key);
  if (it == global_.end()) fail("parameter " + key, "internal: not defined for this method");
  return std::stod(it->second);
}
int64_t Params::i(const std::string& key) const {
  auto it = global_.find(key);
  if (it == global_.end()) fail("parameter " + key, "internal: not defined for this method");
  return std::stoll(it->second);
}
bool Params::b(const std::string& key) const { return s(key) == "true"; }
const std::string& Params::s(const std::string& key) const {
  auto it = global_.find(key);
  if (it == global_.end()) fail("parameter " + key, "internal: not defined for this method");
  return it->second;
}

}  // namespace bm::merging
