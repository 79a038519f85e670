// bitmerge fetch-model: a Hugging Face hub checkpoint (config, tokenizer,
// safetensors or .bin weights, adapter files), resumable and verified.
#include "harness/cli/registry.hpp"
#include "harness/core/log.hpp"
#include "harness/fetch/fetch.hpp"

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
  sub->callback([o] {
    bm::HfFetchOptions fo;
    fo.endpoint = o->endpoint;
    fo.include = o->include;
    fo.download.retries = o->retries;
    auto info = bm::fetch_hf_model(o->repo, o->revision, o->dest, fo);
    bm::log_info("fetch-model: " + o->repo + "@" + info.revision + " -> " + o->dest + " (" +
                 std::to_string(info.files.size()) + " files verified; HF_TOKEN " +
                 (bm::hf_token(fo).empty() ? "not set" : "used") + ")");
  });
});
