// bitmerge storage: bytes per stored component and the ratio against Routing,
// analytically (--family NAME | --family-config config.json | --base DIR) and
// measured from files on disk (--base/--experts/--packed).
#include <sys/stat.h>
#include <torch/torch.h>

#include <iostream>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"
#include "merging/api.hpp"
#include "merging/storage.hpp"

namespace {
struct StorageArgs {
  std::string family, family_config, base, experts, packed, positions, format = "md", output;
  int value_bytes = 2;
};
uint64_t file_size(const std::string& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) bm::fail(p, "cannot stat the file");
  return static_cast<uint64_t>(st.st_size);
}
}  // namespace

BM_COMMAND(storage, [](CLI::App& app) {
  auto a = std::make_shared<StorageArgs>();
  auto* sub = app.add_subcommand("storage", "storage of Routing, task vectors, 1bit-Merging and static merges");
  sub->add_option("--family", a->family, "llama2-7b | llama2-13b | mistral-7b (analytic, no weights)");
  sub->add_option("--family-config", a->family_config, "a config.json (analytic, no weights)");
  sub->add_option("--base", a->base, "base model dir (shapes from headers; bytes on disk)");
  sub->add_option("--experts", a->experts, "name=DIR[,...]: measure the experts' files");
  sub->add_option("--packed", a->packed, "name=FILE[,...]: measure packed task vectors");
  sub->add_option("--positions", a->positions,
                  "name=position[:ternary[=DENSITY]][,...]: one 1bit-Merging assignment to report (default: the "
                  "paper's and variants)");
  sub->add_option("--value-bytes", a->value_bytes, "bytes per uncompressed value (2 = fp16/bf16)");
  sub->add_option("--format", a->format, "md | json");
  sub->add_option("--output", a->output, "write the report here instead of stdout");
  sub->callback([a] {
    using namespace bm::merging;
    std::vector<TensorShape> shapes;
    std::string model;
    std::shared_ptr<bm::Checkpoint> base;
    int n_sources = !a->family.empty() + !a->family_config.empty() + !a->base.empty();
    if (n_sources != 1) bm::fail("storage", "give exactly one of --family, --family-config or --base");
    if (!a->family.empty()) {
      shapes = tensors_from_config(family_preset(a->family));
      model = a->family;
    } else if (!a->family_config.empty()) {
      shapes = tensors_from_config(bm::ModelConfig::from_file(a->family_config));
      model = a->family_config;
    } else {
      base = bm::Checkpoint::open(a->base);
      for (auto& n : base->names()) shapes.push_back({n, base->info(n).shape});
      model = a->base;
    }
    StorageOptions opts;
    opts.value_bytes = a->value_bytes;
    std::vector<ExpertSpec> experts;
    if (!a->experts.empty()) {
      experts = parse_experts_arg(a->experts);
      opts.experts.clear();
      for (auto& e : experts) opts.experts.push_back(e.name);
    }
    if (!a->positions.empty()) {
      MergeSpec tmp;
      for (auto& e : opts.experts) tmp.experts.push_back({e, "", std::nullopt});
      apply_compress_arg(tmp, a->positions);
      std::map<std::string, bm::Compression> m;
      for (auto& e : tmp.experts) m[e.name] = e.compress.value_or(bm::Compression());
      opts.assignments = {m};
    }
    auto r = storage_report(model, shapes, opts);
    auto files_bytes = [](const bm::Checkpoint& c) {
      uint64_t s = 0;
      for (auto& f : c.files()) s += file_size(f);
      return s;
    };
    if (base) add_measured(r, "base on disk (tensor files)", files_bytes(*base), base->dir());
    for (auto& e : experts) {
      auto c = bm::Checkpoint::open(e.path);
      add_measured(r, "expert " + e.name + " on disk", files_bytes(*c), e.path);
    }
    if (!a->packed.empty())
      for (auto& e : parse_experts_arg(a->packed)) add_measured(r, "packed task vector " + e.name, file_size(e.path), e.path);
    std::string text = a->format == "json" ? r.to_json() : r.to_markdown();
    if (a->format != "json" && a->format != "md") bm::fail("--format " + a->format, "use md or json");
    if (a->output.empty())
      std::cout << text;
    else
      bm::write_file_atomic(a->output, text);
  });
});
