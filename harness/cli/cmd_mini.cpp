// `bitmerge mini build`: the self-built mini model family (data + base + experts).
#include <iostream>
#include <nlohmann/json.hpp>

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

  // Are two builds the same bits? (the main job checks a fresh build against
  // the committed results/mini/family.json before it compares scores)
  auto hashes = mini->add_subcommand("hashes", "Compare the models' sha256 of two family.json files (exit 0: same bits)");
  auto files = std::make_shared<std::vector<std::string>>();
  hashes->add_option("files", *files, "NEW/family.json REFERENCE/family.json")->required()->expected(2);
  hashes->callback([files] {
    auto load = [](const std::string& p) {
      try {
        return nlohmann::json::parse(bm::read_text_file(p));
      } catch (const nlohmann::json::exception& e) {
        bm::fail(p, std::string("not a family.json (") + e.what() + "); rebuild with bitmerge mini build");
      }
    };
    auto a = load((*files)[0]), b = load((*files)[1]);
    std::string same, diff;
    for (const char* n : {"base", "chat", "math", "code"}) {
      auto h = [&](const nlohmann::json& j) {
        return j.contains("models") && j["models"].contains(n) ? j["models"][n].value("sha256", std::string()) : "";
      };
      std::string ha = h(a), hb = h(b);
      if (ha.empty() || hb.empty())
        bm::fail(ha.empty() ? (*files)[0] : (*files)[1], std::string("no sha256 for model '") + n +
                                                            "' (made before hashes were recorded); rebuild it");
      if (ha == hb) same += std::string(same.empty() ? "" : ", ") + n + " " + ha.substr(0, 12);
      else diff += std::string(diff.empty() ? "" : ", ") + n + " " + ha.substr(0, 12) + " != " + hb.substr(0, 12);
    }
    auto pin = [](const nlohmann::json& j) {
      return j.contains("cpu_numerics") ? j["cpu_numerics"].value("pin_id", std::string("?")) : std::string("none");
    };
    if (diff.empty()) {
      std::cout << "mini hashes: the same models as the reference (" << same << "; pin " << pin(a)
                << "): scores must match exactly\n";
      return;
    }
    std::cout << "mini hashes: the models DIFFER from the reference (" << diff << "; pin " << pin(a) << " vs "
              << pin(b) << "): scores are compared within noise, not exactly\n";
    throw CLI::RuntimeError(1);
  });
});
