// bitmerge score: log P(continuation | context) for each JSONL line.
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

std::vector<bm::LoglikelihoodRequest> read_requests(const std::string& path) {
  std::ifstream in(path);
  if (!in) bm::fail(path, "cannot open the input file; check the --input path");
  std::vector<bm::LoglikelihoodRequest> reqs;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const std::exception& e) {
      bm::fail(where, "not valid JSON; write one JSON object per line");
    }
    bm::LoglikelihoodRequest r;
    try {
      if (j.is_object() && j.contains("context_ids") && j.contains("continuation_ids")) {
        r.context_ids = j["context_ids"].get<std::vector<int64_t>>();
        r.continuation_ids = j["continuation_ids"].get<std::vector<int64_t>>();
        if (r.context_ids.empty()) bm::fail(where, "context_ids is empty; give at least one token (e.g. BOS)");
      } else if (j.is_object() && j.contains("context") && j.contains("continuation")) {
        r.context = j["context"].get<std::string>();
        r.continuation = j["continuation"].get<std::string>();
      } else {
        bm::fail(where, "expected {\"context\": str, \"continuation\": str} or "
                        "{\"context_ids\": [int], \"continuation_ids\": [int]}");
      }
    } catch (const nlohmann::json::exception& e) {
      bm::fail(where, "wrong value type (strings for context/continuation, integer lists for *_ids)");
    }
    reqs.push_back(std::move(r));
  }
  return reqs;
}

}  // namespace

BM_COMMAND(score, [](CLI::App& app) {
  auto* sub = app.add_subcommand("score", "Log-likelihood of continuations given contexts (lm-eval semantics)");
  struct Opts {
    std::string model, input, output;
    bm::EngineOptions eng;
    bool add_bos = false, no_add_bos = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "Model directory (config.json, safetensors, tokenizer.model)")->required();
  sub->add_option("--input", o->input,
                  "JSONL: {\"context\": str, \"continuation\": str} or {\"context_ids\": [int], "
                  "\"continuation_ids\": [int]} (ids used exactly, no BOS)")
      ->required();
  sub->add_option("--output", o->output, "JSONL, input order: {\"logprob\": float, \"is_greedy\": bool, \"n_tokens\": int}")
      ->required();
  sub->add_option("--device", o->eng.device, "cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--dtype", o->eng.dtype, "float32 | bfloat16 | float16 (default: float32 on cpu, bfloat16 on cuda)");
  sub->add_option("--batch-size", o->eng.batch_size, "Rows per forward pass")->capture_default_str();
  sub->add_flag("--add-bos", o->add_bos,
                "Prepend BOS to text contexts (default: the model's tokenizer_config.json add_bos_token, as lm-eval's "
                "HF backend; false without one)");
  sub->add_flag("--no-add-bos", o->no_add_bos, "No BOS before text contexts");
  sub->callback([o] {
    auto reqs = read_requests(o->input);
    auto bos = bm::resolve_add_bos(bm::bos_override(o->add_bos, o->no_add_bos),
                                   o->add_bos ? "--add-bos" : "--no-add-bos", o->model);
    o->eng.add_bos = bos.add_bos;
    auto engine = bm::Engine::load(o->model, o->eng);
    bm::log_info(engine->description());
    bm::log_info("add_bos = " + std::string(bos.add_bos ? "true" : "false") + " (" + bos.source + ")");
    const auto t0 = std::chrono::steady_clock::now();
    auto res = engine->loglikelihood(reqs);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t cont_tokens = 0;
    for (const auto& r : res) cont_tokens += r.n_tokens;
    std::ostringstream msg;
    msg << "score: " << res.size() << " requests, " << cont_tokens << " continuation tokens in " << secs << " s";
    bm::log_info(msg.str());
    bm::AtomicFile out(o->output);
    for (const auto& r : res)
      out.stream() << json{{"logprob", r.logprob}, {"is_greedy", r.is_greedy}, {"n_tokens", r.n_tokens}}.dump() << "\n";
    out.commit();
  });
});
