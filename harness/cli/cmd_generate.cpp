// bitmerge generate: greedy continuation of each JSONL prompt.
#include <chrono>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/engine/engine.hpp"
#include "harness/models/tokenizer_config.hpp"

namespace {

using nlohmann::json;

std::vector<bm::GenerateRequest> read_prompts(const std::string& path, int64_t max_new) {
  std::ifstream in(path);
  if (!in) bm::fail(path, "cannot open the input file; check the --input path");
  std::vector<bm::GenerateRequest> reqs;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const std::exception&) {
      bm::fail(where, "not valid JSON; write one JSON object per line");
    }
    bm::GenerateRequest r;
    r.max_new_tokens = max_new;
    try {
      if (j.is_object() && j.contains("prompt_ids")) {
        r.prompt_ids = j["prompt_ids"].get<std::vector<int64_t>>();
        if (r.prompt_ids.empty()) bm::fail(where, "prompt_ids is empty; give at least one token (e.g. BOS)");
      } else if (j.is_object() && j.contains("prompt")) {
        r.prompt = j["prompt"].get<std::string>();
      } else {
        bm::fail(where, "expected {\"prompt\": str, \"until\": [str]} or {\"prompt_ids\": [int]}");
      }
      if (j.contains("until")) r.until = j["until"].get<std::vector<std::string>>();
      if (j.contains("max_new_tokens")) r.max_new_tokens = j["max_new_tokens"].get<int64_t>();
    } catch (const nlohmann::json::exception&) {
      bm::fail(where, "wrong value type (prompt: string, until: list of strings, prompt_ids: list of integers)");
    }
    reqs.push_back(std::move(r));
  }
  return reqs;
}

}  // namespace

BM_COMMAND(generate, [](CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Greedy generation with a KV cache (stops at EOS, stop strings, max tokens)");
  struct Opts {
    std::string model, input, output;
    int64_t max_new = 256;
    bm::EngineOptions eng;
    bool add_bos = false, no_add_bos = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "Model directory (config.json, safetensors, tokenizer.model)")->required();
  sub->add_option("--input", o->input,
                  "JSONL: {\"prompt\": str, \"until\": [str]} or {\"prompt_ids\": [int]} (ids used exactly)")
      ->required();
  sub->add_option("--output", o->output, "JSONL, input order: {\"text\": str, \"ids\": [int], \"n_tokens\": int}")
      ->required();
  sub->add_option("--max-new-tokens", o->max_new, "Most tokens generated per prompt")->capture_default_str();
  sub->add_option("--device", o->eng.device, "cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--dtype", o->eng.dtype, "float32 | bfloat16 | float16 (default: float32 on cpu, bfloat16 on cuda)");
  sub->add_option("--batch-size", o->eng.batch_size, "Prompts per batch")->capture_default_str();
  sub->add_flag("--add-bos", o->add_bos,
                "Prepend BOS to text prompts (default: the model's tokenizer_config.json add_bos_token, as lm-eval's "
                "HF backend; false without one)");
  sub->add_flag("--no-add-bos", o->no_add_bos, "No BOS before text prompts");
  sub->callback([o] {
    if (o->max_new < 1) bm::fail("--max-new-tokens", "must be at least 1");
    auto reqs = read_prompts(o->input, o->max_new);
    auto bos = bm::resolve_add_bos(bm::bos_override(o->add_bos, o->no_add_bos),
                                   o->add_bos ? "--add-bos" : "--no-add-bos", o->model);
    o->eng.add_bos = bos.add_bos;
    auto engine = bm::Engine::load(o->model, o->eng);
    bm::log_info(engine->description());
    bm::log_info("add_bos = " + std::string(bos.add_bos ? "true" : "false") + " (" + bos.source + ")");
    const auto t0 = std::chrono::steady_clock::now();
    auto res = engine->generate(reqs);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t gen_tokens = 0;
    for (const auto& r : res) gen_tokens += r.n_tokens;
    std::ostringstream msg;
    msg << "generate: " << res.size() << " prompts, " << gen_tokens << " generated tokens in " << secs << " s";
    bm::log_info(msg.str());
    bm::AtomicFile out(o->output);
    for (const auto& r : res) out.stream() << json{{"text", r.text}, {"ids", r.ids}, {"n_tokens", r.n_tokens}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    out.commit();
  });
});
