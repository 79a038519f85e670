// bitmerge fetch-model: a Hugging Face hub checkpoint (config, tokenizer,
// safetensors or .bin weights, adapter files), resumable and verified.
#include "harness/cli/registry.hpp"
#include "harness/core/log.hpp"
#include "harness/fetch/fetch.hpp"

namespace {
void run_fetch(const std::string& repo, const std::string& revision, const std::string& dest,
               const std::string& endpoint, const std::vector<std::string>& include, int retries) {
  bm::HfFetchOptions fo;
  fo.endpoint = endpoint;
  fo.include = include;
  fo.download.retries = retries;
  auto info = bm::fetch_hf_model(repo, revision, dest, fo);
  bm::log_info("fetch-model: " + repo + "@" + info.revision + " -> " + dest + " (" + std::to_string(info.files.size()) +
               " files verified; HF_TOKEN " + (bm::hf_token(fo).empty() ? "not set" : "used") + ")");
}
}  // namespace

BM_COMMAND(fetch_model, [](CLI::App& app) {
  auto* sub = app.add_subcommand("fetch-model", "Download a Hugging Face hub checkpoint (resumable, sha256-verified)");
  struct Opts {
    std::string repo, revision = "main", dest, endpoint;
    std::vector<std::string> include;
    int retries = 4;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--repo", o->repo, "ORG/NAME on the hub")->required();
  sub->add_option("--revision", o->revision, "Branch, tag or commit")->capture_default_str();
  sub->add_option("--dest", o->dest, "Destination directory")->required();
  sub->add_option("--include", o->include, "Extra glob patterns to download (e.g. '*.py')");
  sub->add_option("--endpoint", o->endpoint, "Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)");
  sub->add_option("--retries", o->retries, "Resumed attempts per file after a broken transfer")->capture_default_str();
  sub->callback([o] { run_fetch(o->repo, o->revision, o->dest, o->endpoint, o->include, o->retries); });
});

// Shorthand used in the runner's messages: bitmerge fetch ORG/NAME DIR [--revision R]
BM_COMMAND(fetch, [](CLI::App& app) {
  auto* sub = app.add_subcommand("fetch", "Same as fetch-model: bitmerge fetch ORG/NAME DIR [--revision R]");
  struct Opts {
    std::string repo, revision = "main", dest;
    int retries = 4;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("repo", o->repo, "ORG/NAME on the hub")->required();
  sub->add_option("dest", o->dest, "Destination directory")->required();
  sub->add_option("--revision", o->revision, "Branch, tag or commit")->capture_default_str();
  sub->add_option("--retries", o->retries, "Resumed attempts per file after a broken transfer")->capture_default_str();
  sub->callback([o] { run_fetch(o->repo, o->revision, o->dest, "", {}, o->retries); });
});
