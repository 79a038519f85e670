// bitmerge compress: one expert's task vector, compressed at a position (1-bit
// sign, or --position POSITION:ternary[=DENSITY] for top-k ternary), written as
// a packed safetensors file (format: merging/packed_format.hpp).
#include <torch/torch.h>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/log.hpp"
#include "merging/packed_format.hpp"

namespace {
struct CompressArgs {
  std::string base, expert, position, output, name;
};
}  // namespace

BM_COMMAND(compress, [](CLI::App& app) {
  auto a = std::make_shared<CompressArgs>();
  auto* sub = app.add_subcommand("compress", "compress an expert's task vector (1-bit sign or ternary) into a packed file");
  sub->add_option("--base", a->base, "base (pretrained) model dir")->required();
  sub->add_option("--expert", a->expert, "fine-tuned expert model dir")->required();
  sub->add_option("--position", a->position,
                  "attention | mlp | linear | none, optionally :sign (default) or :ternary[=DENSITY]")
      ->required();
  sub->add_option("--output", a->output, "output .safetensors path")->required();
  sub->add_option("--name", a->name, "expert name recorded in the file (default: the expert dir's name)");
  sub->callback([a] {
    auto pos = bm::parse_compression(a->position, "--position");
    std::string name = a->name;
    if (name.empty()) {
      std::string d = a->expert;
      while (!d.empty() && d.back() == '/') d.pop_back();
      name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
    }
    auto base = bm::Checkpoint::open(a->base);
    auto expert = bm::Checkpoint::open(a->expert);
    auto s = bm::merging::write_packed_task_vector(*base, *expert, pos, name, a->output);
    for (auto& n : s.notes) bm::log_info("compress: " + n);
    bm::log_info("compress: wrote " + a->output + " (" + std::to_string(s.file_bytes) + " bytes, " +
                 std::to_string(s.packed_tensors) + " " + (pos.scheme == bm::Scheme::Ternary ? "ternary" : "1-bit") +
                 " tensors, " + std::to_string(s.dense_tensors) +
                 " full-precision)");
  });
});
