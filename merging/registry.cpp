#include "merging/registry.hpp"

#include <algorithm>
#include <set>

#include "harness/core/error.hpp"

namespace bm::merging {

namespace {
// Each vocabulary entry (merging/vocab.cpp) has one registry entry of the same name, in the same order.
void check_against_vocab(const std::vector<MethodInfo>& methods) {
  const auto& vocab = method_vocab();
  for (size_t i = 0; i < std::max(methods.size(), vocab.size()); ++i) {
    const std::string r = i < methods.size() ? methods[i].name : "(none)";
    const std::string v = i < vocab.size() ? vocab[i].name : "(none)";
    if (r != v)
      fail("merging/registry.cpp", "internal: registry entry " + std::to_string(i) + " is '" + r +
                                       "' but merging/vocab.cpp's is '" + v + "'; keep the two lists in one order");
  }
}
}  // namespace

const std::vector<MethodInfo>& merge_methods() {
  // The explicit registry: one line per method (methods/<name>.cpp); names and
  // parameters come from the vocabulary (merging/vocab.cpp), checked here once.
  static const std::vector<MethodInfo> methods = [] {
    std::vector<MethodInfo> m{
        method_average(), method_task_arithmetic(), method_ties(), method_dare(),
        method_dare_ties(), method_routing(), method_onebit(),
        method_della(), method_della_linear(), method_breadcrumbs(), method_breadcrumbs_ties(),
    };
    check_against_vocab(m);
    return m;
  }();
  return methods;
}

MethodInfo method_info(const std::string& name) {
  const MethodVocab* v = find_method_vocab(name);
  if (!v || v->name != name)
    fail("merging/vocab.cpp", "internal: no vocabulary entry named '" + name + "'; add its row to make_vocab()");
  MethodInfo m;
  static_cast<MethodVocab&>(m) = *v;
  return m;
}

std::vector<std::string> method_names() {
  std::vector<std::string> v;
  for (auto& m : merge_methods()) v.push_back(m.name);
  return v;
}

const MethodInfo& find_method(const std::string& name) {
  if (const MethodVocab* v = find_method_vocab(name))  // a name or an alias (dare_linear = dare)
    for (auto& m : merge_methods())
      if (m.name == v->name) return m;
  std::string all;
  for (auto& n : method_names()) all += (all.empty() ? "" : ", ") + n;
  fail("--method " + name, "unknown merge method" + did_you_mean(name, method_names_and_aliases()) + "; known: " + all);
}

static const ParamSpec* find_spec(const MethodInfo& m, const std::string& key) {
  for (auto& p : m.params)
    if (p.name == key) return &p;
  return nullptr;
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
    check_param_value(m, *spec, "--param " + key, value);
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
