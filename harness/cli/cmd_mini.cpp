// `bitmerge mini build`: the self-built mini model family (data + base + experts).
#include <iostream>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/train/family.hpp"

namespace {

std::string config_for_size(const std::string& size) {
  std::string p = std::string(BITMERGE_SOURCE_DIR) + "/configs/mini/" + size + ".toml";
  if (!bm::file_exists(p)) bm::fail(p, "no config for size '" + size + "'; pass --config FILE");
  return p;
}

}  // namespace

BM_COMMAND(mini, [](CLI::App& app) {
  auto* mini = app.add_subcommand("mini", "Self-built mini model family (synthetic data, base, chat/math/code experts)");
  mini->require_subcommand(1);
  auto* build = mini->add_subcommand("build", "Generate the data and train (or reuse cached) base + experts");
  struct Opts {
    std::string size = "nano", config, out, device = "cpu";
    int threads = 0;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  build->add_option("--size", o->size, "nano (CPU, minutes) or mini (GPU)")->check(CLI::IsMember({"nano", "mini"}));
  build->add_option("--config", o->config, "family TOML (default: configs/mini/<size>.toml)");
  build->add_option("--out", o->out, "output directory (default: mini-<size>)");
  build->add_option("--device", o->device, "cpu, cuda or cuda:N");
  build->add_option("--threads", o->threads, "CPU threads for libtorch (0 = default)");
  build->add_flag("--force", o->force, "retrain even when cached models match");
  build->callback([o] {
    std::string cfg_path = o->config.empty() ? config_for_size(o->size) : o->config;
    auto cfg = bm::train::FamilyConfig::from_toml(cfg_path);
    bm::train::BuildOptions b;
    b.out_dir = o->out.empty() ? "mini-" + o->size : o->out;
    b.device = o->device;
    b.threads = o->threads;
    b.force = o->force;
    auto s = bm::train::build_family(cfg, b);
    std::cout << s.text;
  });
});
