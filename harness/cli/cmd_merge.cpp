// bitmerge merge: merge experts into one HF model dir (merging/api.hpp).
//   bitmerge merge --method NAME --base DIR --experts name=DIR[,name=DIR...]
//                  [--compress name=position[:scheme][,...]] [--param key=value ...]
//                  [--route name] [--device cpu|cuda] --output DIR
//   bitmerge merge --config merge.toml   (same settings; flags given too override it)
#include <torch/torch.h>

#include <iostream>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/log.hpp"
#include "merging/api.hpp"
#include "merging/vocab.hpp"

namespace {
struct MergeArgs {
  std::string config, method, base, experts, compress, route, device, output;
  std::vector<std::string> params;
  bool list = false;
};
}  // namespace

BM_COMMAND(merge, [](CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  std::string methods;  // the merge methods' vocabulary (merging/vocab.cpp)
  for (auto& m : bm::merging::method_vocab()) methods += (methods.empty() ? "" : ", ") + m.name;
  auto* sub = app.add_subcommand("merge", "merge expert checkpoints (" + methods + ")");
  sub->add_option("--config", a->config, "merge.toml with the same settings");
  sub->add_option("--method", a->method, "merge method (--list-methods)");
  sub->add_option("--base", a->base, "base (pretrained) model dir");
  sub->add_option("--experts", a->experts, "name=DIR[,name=DIR...] (DIR may be a packed file from `compress`)");
  sub->add_option("--compress", a->compress,
                  "name=attention|mlp|linear|none[:ternary[=DENSITY]][,...]: compress experts first (1-bit sign, or "
                  "top-k ternary)");
  sub->add_option("--param", a->params, "key=value or <expert>.key=value (repeatable)");
  sub->add_option("--route", a->route, "expert selected by routing / onebit");
  sub->add_option("--device", a->device, "cpu | cuda");
  sub->add_option("--output", a->output, "output model dir");
  sub->add_flag("--list-methods", a->list, "print the methods and their parameters");
  sub->callback([a] {
    using namespace bm::merging;
    if (a->list) {
      for (auto& m : merge_methods()) {
        std::cout << m.name << ": " << m.summary << (m.needs_route ? " (needs --route)" : "");
        for (auto& alias : m.aliases) std::cout << " (also --method " << alias << ")";
        std::cout << "\n";
        for (auto& p : m.params)
          std::cout << "  " << p.name << " = " << p.default_value << (p.per_expert ? "  [per expert]" : "") << "  "
                    << p.help << "\n";
      }
      return;
    }
    MergeSpec spec;
    if (!a->config.empty()) spec = load_merge_config(a->config);
    if (!a->method.empty()) spec.method = a->method;
    if (!a->base.empty()) spec.base = a->base;
    if (!a->experts.empty()) spec.experts = parse_experts_arg(a->experts);
    if (!a->compress.empty()) apply_compress_arg(spec, a->compress);
    for (auto& kv : a->params) apply_param_arg(spec, kv);
    if (!a->route.empty()) spec.route = a->route;
    if (!a->device.empty()) spec.device = a->device;
    if (!a->output.empty()) spec.output = a->output;
    auto notes = merge_models(spec);
    bm::log_info("merge: wrote " + spec.output);
  });
});
