// Forward and engine against HF transformers (tiny random Llama/Mistral made
// by make_reference.py), batch-size invariance, KV cache, packed shared
// contexts, the score/generate CLI, and a log-likelihood computed by hand.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/engine/engine.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

// Builds the models once per script version (stamp = sha256 of the script).
std::string models_dir() {
  static std::string dir;
  if (!dir.empty()) return dir;
  const std::string src = env("BITMERGE_SOURCE_DIR"), py = env("BITMERGE_TEST_PYTHON"), data = env("BITMERGE_DATA_DIR");
  if (src.empty() || py.empty() || data.empty()) throw std::runtime_error("run through ctest (BITMERGE_* env unset)");
  const std::string script = src + "/tests/engine/make_reference.py";
  const std::string stamp = bm::sha256_file(script);
  const std::string out = fs::absolute("engine_test_models").string();
  if (!(bm::file_exists(out + "/stamp") && bm::read_text_file(out + "/stamp") == stamp)) {
    bm::remove_tree(out);
    bm::make_dirs(out);
    std::string cmd = "'" + py + "' '" + script + "' '" + out + "' '" + data + "/tokenizers/llama2/tokenizer.model' > '" +
                      out + "/log.txt' 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make_reference.py failed; see " + out + "/log.txt");
    bm::write_file_atomic(out + "/stamp", stamp);
  }
  dir = out;
  return dir;
}

torch::Tensor read_ref(const std::string& model, const std::string& name) {
  bm::SafetensorsFile f(models_dir() + "/" + model + "/ref.safetensors");
  const auto& info = f.at(name);
  auto dt = info.dtype == bm::DType::F32 ? torch::kFloat32 : torch::kInt64;
  return torch::from_blob(const_cast<uint8_t*>(f.data(info)), info.shape, torch::TensorOptions().dtype(dt)).clone();
}

json read_json(const std::string& model) { return json::parse(bm::read_text_file(models_dir() + "/" + model + "/ref.json")); }

std::unique_ptr<bm::Engine> make_engine(const std::string& model, int64_t batch) {
  bm::EngineOptions o;
  o.batch_size = batch;
  return bm::Engine::load(models_dir() + "/" + model, o);
}

std::vector<bm::LoglikelihoodRequest> text_requests(const json& ll) {
  std::vector<bm::LoglikelihoodRequest> reqs;
  for (const auto& r : ll) {
    bm::LoglikelihoodRequest q;
    if (r.contains("context")) {
      q.context = r["context"];
      q.continuation = r["continuation"];
    } else {
      q.context_ids = r["context_ids"].get<std::vector<int64_t>>();
      q.continuation_ids = r["continuation_ids"].get<std::vector<int64_t>>();
    }
    reqs.push_back(q);
  }
  return reqs;
}

const char* kModels[] = {"llama_tied", "llama_untied", "mistral"};

}  // namespace

class PerModel : public ::testing::TestWithParam<const char*> {};

TEST_P(PerModel, LogitsMatchHF) {
  c10::InferenceMode g;
  auto m = bm::Transformer::load(models_dir() + "/" + GetParam(), torch::kCPU, torch::kFloat32);
  auto tokens = read_ref(GetParam(), "tokens"), ref = read_ref(GetParam(), "logits");
  auto out = m->forward(tokens).logits;
  double diff = (out - ref).abs().max().item<double>();
  EXPECT_LE(diff, 1e-4) << GetParam();
}

TEST_P(PerModel, KVCacheStepsEqualFullForward) {
  c10::InferenceMode g;
  auto m = bm::Transformer::load(models_dir() + "/" + GetParam(), torch::kCPU, torch::kFloat32);
  auto tokens = read_ref(GetParam(), "tokens");
  const int64_t B = tokens.size(0), T = tokens.size(1);
  auto full = m->forward(tokens).logits;
  auto cache = m->make_cache(B, T);
  bm::ForwardOptions fo;
  fo.cache = &cache;
  std::vector<torch::Tensor> parts;
  // 9-token prefill, then chunks of 1, 3, then the rest token by token
  std::vector<int64_t> cuts = {0, 9, 10, 13};
  for (int64_t t = 14; t <= T; ++t) cuts.push_back(t);
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    fo.cache_pos = cuts[i];
    parts.push_back(m->forward(tokens.narrow(1, cuts[i], cuts[i + 1] - cuts[i]), fo).logits);
  }
  EXPECT_LE((at::cat(parts, 1) - full).abs().max().item<double>(), 1e-4);
}

TEST_P(PerModel, GreedyGenerationMatchesHF) {
  auto ref = read_json(GetParam());
  for (int64_t batch : {1, 4}) {
    auto eng = make_engine(GetParam(), batch);
    std::vector<bm::GenerateRequest> reqs;
    for (const auto& g : ref["generations"]) {
      bm::GenerateRequest r;
      r.prompt_ids = g["prompt_ids"].get<std::vector<int64_t>>();
      r.max_new_tokens = 12;
      reqs.push_back(r);
    }
    auto res = eng->generate(reqs);
    ASSERT_EQ(res.size(), reqs.size());
    for (size_t i = 0; i < res.size(); ++i)
      EXPECT_EQ(res[i].ids, ref["generations"][i]["ids"].get<std::vector<int64_t>>())
          << GetParam() << " prompt " << i << " batch " << batch;
  }
}

TEST_P(PerModel, FinishedRowsDroppedMidBatchKeepResults) {
  auto ref = read_json(GetParam());
  bm::EngineOptions o;
  o.batch_size = 4;
  o.check_every = 1;  // look (and compact) after every token
  auto eng = bm::Engine::load(models_dir() + "/" + GetParam(), o);
  const int64_t lens[] = {12, 3, 7, 1};
  std::vector<bm::GenerateRequest> reqs;
  for (size_t i = 0; i < 4; ++i) {
    bm::GenerateRequest r;
    r.prompt_ids = ref["generations"][i]["prompt_ids"].get<std::vector<int64_t>>();
    r.max_new_tokens = lens[i];
    reqs.push_back(r);
  }
  auto res = eng->generate(reqs);
  for (size_t i = 0; i < 4; ++i) {
    auto full = ref["generations"][i]["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(res[i].ids, std::vector<int64_t>(full.begin(), full.begin() + lens[i])) << GetParam() << " " << i;
  }
}

TEST_P(PerModel, LoglikelihoodMatchesHFAcrossBatchSizes) {
  auto ref = read_json(GetParam());
  auto reqs = text_requests(ref["loglikelihood"]);
  std::vector<bm::LoglikelihoodResult> first;
  for (int64_t batch : {1, 3, 64}) {
    auto res = make_engine(GetParam(), batch)->loglikelihood(reqs);
    ASSERT_EQ(res.size(), reqs.size());
    for (size_t i = 0; i < res.size(); ++i) {
      const auto& r = ref["loglikelihood"][i];
      EXPECT_NEAR(res[i].logprob, r["logprob"].get<double>(), 1e-4) << GetParam() << " request " << i;
      EXPECT_EQ(res[i].is_greedy, r["is_greedy"].get<bool>()) << GetParam() << " request " << i;
      EXPECT_EQ(res[i].n_tokens, r["n_tokens"].get<int64_t>()) << GetParam() << " request " << i;
      if (!first.empty()) {
        EXPECT_NEAR(res[i].logprob, first[i].logprob, 1e-5) << "batch " << batch << " request " << i;
        EXPECT_EQ(res[i].is_greedy, first[i].is_greedy);
      }
    }
    if (first.empty()) first = res;
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, PerModel, ::testing::ValuesIn(kModels));

TEST(Engine, TokenizationSplitsLikeLmEval) {
  auto ref = read_json("llama_tied");
  auto eng = make_engine("llama_tied", 8);
  for (const auto& r : ref["loglikelihood"]) {
    if (!r.contains("context")) continue;
    auto [ctx, cont] = bm::encode_pair(eng->tokenizer(), r["context"], r["continuation"], false);
    EXPECT_EQ(ctx, r["context_ids"].get<std::vector<int64_t>>()) << r["context"];
    EXPECT_EQ(cont, r["continuation_ids"].get<std::vector<int64_t>>()) << r["continuation"];
  }
}

TEST(Engine, SlidingWindowIsActuallyApplied) {
  c10::InferenceMode g;
  auto dir = models_dir() + "/mistral";
  auto with = bm::Transformer::load(dir, torch::kCPU, torch::kFloat32);
  auto cfg = with->config();
  cfg.sliding_window = 0;
  auto without = std::make_shared<bm::Transformer>(cfg, with->named_parameters(), torch::kCPU, torch::kFloat32);
  auto tokens = read_ref("mistral", "tokens"), ref = read_ref("mistral", "logits");
  EXPECT_GT((without->forward(tokens).logits - ref).abs().max().item<double>(), 1e-3)
      << "the reference would not notice a missing sliding window";
  // Left padding does not move the window (it is measured in positions).
  auto row = tokens.narrow(0, 0, 1).narrow(1, 0, 20);
  auto padded = at::cat({torch::zeros({1, 5}, torch::kInt64), row}, 1);
  auto am = at::cat({torch::zeros({1, 5}, torch::kBool), torch::ones({1, 20}, torch::kBool)}, 1);
  bm::ForwardOptions fo;
  fo.attention_mask = am;
  fo.positions = (am.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  auto lp = with->forward(padded, fo).logits.narrow(1, 5, 20);
  EXPECT_LE((lp - ref.narrow(0, 0, 1).narrow(1, 0, 20)).abs().max().item<double>(), 1e-4);
}

TEST(Engine, SharedContextPackingEqualsSeparateRuns) {
  auto eng = make_engine("mistral", 16);
  auto tokens = read_ref("mistral", "tokens");
  std::vector<int64_t> ctx(tokens[0].data_ptr<int64_t>(), tokens[0].data_ptr<int64_t>() + 12);
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs;
  for (int k = 0; k < 5; ++k) {
    std::vector<int64_t> cont;
    for (int j = 0; j <= k * 2; ++j) cont.push_back(tokens[1 + k % 2][j].item<int64_t>());
    pairs.emplace_back(ctx, cont);
  }
  auto packed = eng->loglikelihood_tokens(pairs);
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto alone = eng->loglikelihood_tokens({pairs[i]});
    EXPECT_NEAR(packed[i].logprob, alone[0].logprob, 1e-5) << i;
    EXPECT_EQ(packed[i].is_greedy, alone[0].is_greedy);
    EXPECT_EQ(packed[i].n_tokens, static_cast<int64_t>(pairs[i].second.size()));
  }
}

TEST(Engine, StopStringsAndMaxNewTokens) {
  auto ref = read_json("llama_tied");
  auto eng = make_engine("llama_tied", 2);
  const auto& g = ref["generations"][3];
  auto full_ids = g["ids"].get<std::vector<int64_t>>();
  std::string full = eng->tokenizer().decode(full_ids);
  ASSERT_GE(full.size(), 6u);
  std::string stop = full.substr(full.size() / 2, 2);
  bm::GenerateRequest r;
  r.prompt_ids = g["prompt_ids"].get<std::vector<int64_t>>();
  r.max_new_tokens = 12;
  r.until = {stop};
  bm::GenerateRequest r2 = r;
  r2.until = {};
  r2.max_new_tokens = 3;
  auto res = eng->generate({r, r2});
  EXPECT_EQ(res[0].text, full.substr(0, full.find(stop)));
  EXPECT_LE(res[0].ids.size(), full_ids.size());
  EXPECT_EQ(res[1].ids, std::vector<int64_t>(full_ids.begin(), full_ids.begin() + 3));
  EXPECT_EQ(res[1].n_tokens, 3);
}

// One layer whose attention and MLP are zero: logits = E . rmsnorm(E[token]).
TEST(Engine, HandComputedLoglikelihood) {
  bm::ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = 4, c.hidden_size = 2, c.intermediate_size = 2, c.num_hidden_layers = 1;
  c.num_attention_heads = 1, c.num_key_value_heads = 1, c.head_dim = 2, c.rms_norm_eps = 0.0;
  c.tie_word_embeddings = true, c.max_position_embeddings = 16;
  std::map<std::string, torch::Tensor> w;
  w["model.embed_tokens.weight"] = torch::tensor({1.f, 0.f, 0.f, 1.f, -1.f, 0.f, 0.f, -1.f}).view({4, 2});
  for (const char* n : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                        "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
    w[std::string("model.layers.0.") + n] = torch::zeros({2, 2});
  w["model.layers.0.input_layernorm.weight"] = torch::ones({2});
  w["model.layers.0.post_attention_layernorm.weight"] = torch::ones({2});
  w["model.norm.weight"] = torch::ones({2});
  auto m = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  bm::Engine eng(m, nullptr, bm::EngineOptions{});
  // rmsnorm(e) = sqrt(2) e; logits of unit e_i are sqrt(2) at i, -sqrt(2) at its opposite, 0 elsewhere.
  const double r2 = std::sqrt(2.0);
  const double logz = std::log(std::exp(r2) + std::exp(-r2) + 2.0);
  // context [0], continuation [1, 2]: P(1|0) has logit 0, P(2|1) has logit 0.
  // continuation [0]: the argmax after token 0 is token 0 (logit sqrt 2).
  auto res = eng.loglikelihood_tokens({{{0}, {1, 2}}, {{0}, {0}}, {{3, 0}, {0, 2}}});
  EXPECT_NEAR(res[0].logprob, -2 * logz, 1e-6);
  EXPECT_FALSE(res[0].is_greedy);
  EXPECT_NEAR(res[1].logprob, r2 - logz, 1e-6);
  EXPECT_TRUE(res[1].is_greedy);
  EXPECT_NEAR(res[2].logprob, (r2 - logz) + (-r2 - logz), 1e-6);
  EXPECT_FALSE(res[2].is_greedy);
  EXPECT_EQ(res[2].n_tokens, 2);
}

TEST(Engine, ShapeMismatchNamesTheTensor) {
  bm::ModelConfig c;
  c.vocab_size = 4, c.hidden_size = 2, c.intermediate_size = 2, c.num_hidden_layers = 1;
  c.num_attention_heads = 1, c.num_key_value_heads = 1, c.head_dim = 2, c.tie_word_embeddings = true;
  auto m = bm::Transformer::random_init(c, 7, torch::kCPU, torch::kFloat32);
  auto w = m->named_parameters();
  w["model.layers.0.mlp.up_proj.weight"] = torch::zeros({3, 2});
  try {
    bm::Transformer t(c, w, torch::kCPU, torch::kFloat32);
    FAIL() << "no error";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
}

// ---- CLI ----
namespace {
int run(const std::string& cmd, std::string* err = nullptr) {
  std::string errf = fs::absolute("engine_cli_err.txt").string();
  int rc = std::system((cmd + " 2> '" + errf + "'").c_str());
  if (err) *err = bm::read_text_file(errf);
  return WEXITSTATUS(rc);
}
std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}
}  // namespace

TEST(Cli, ScoreMatchesHF) {
  const std::string bin = env("BITMERGE_BIN");
  ASSERT_TRUE(bm::file_exists(bin)) << bin;
  for (const char* model : kModels) {
    auto ref = read_json(model);
    std::string in = fs::absolute(std::string("engine_cli_score_") + model + ".jsonl").string();
    std::string out = in + ".out";
    std::ostringstream o;
    for (const auto& r : ref["loglikelihood"]) {
      if (r.contains("context")) {
        o << json{{"context", r["context"]}, {"continuation", r["continuation"]}}.dump() << "\n";
        o << json{{"context_ids", r["context_ids"]}, {"continuation_ids", r["continuation_ids"]}}.dump() << "\n";
      } else {
        o << json{{"context_ids", r["context_ids"]}, {"continuation_ids", r["continuation_ids"]}}.dump() << "\n";
      }
    }
    bm::write_file_atomic(in, o.str());
    std::string err;
    ASSERT_EQ(run("'" + bin + "' score --model '" + models_dir() + "/" + model + "' --input '" + in + "' --output '" +
                      out + "' --batch-size 3",
                  &err),
              0)
        << err;
    auto lines = read_jsonl(out);
    size_t k = 0;
    for (const auto& r : ref["loglikelihood"]) {
      int copies = r.contains("context") ? 2 : 1;
      for (int c = 0; c < copies; ++c, ++k) {
        ASSERT_LT(k, lines.size());
        EXPECT_NEAR(lines[k]["logprob"].get<double>(), r["logprob"].get<double>(), 1e-4) << model << " line " << k;
        EXPECT_EQ(lines[k]["is_greedy"].get<bool>(), r["is_greedy"].get<bool>()) << model << " line " << k;
        EXPECT_EQ(lines[k]["n_tokens"].get<int64_t>(), r["n_tokens"].get<int64_t>()) << model << " line " << k;
      }
    }
    EXPECT_EQ(k, lines.size());
  }
}

TEST(Cli, GenerateMatchesHF) {
  const std::string bin = env("BITMERGE_BIN");
  auto ref = read_json("mistral");
  std::string in = fs::absolute("engine_cli_gen.jsonl").string(), out = in + ".out";
  std::ostringstream o;
  for (const auto& g : ref["generations"]) o << json{{"prompt_ids", g["prompt_ids"]}}.dump() << "\n";
  o << json{{"prompt", "Once upon a time"}, {"until", {"\n\n"}}}.dump() << "\n";
  bm::write_file_atomic(in, o.str());
  std::string err;
  ASSERT_EQ(run("'" + bin + "' generate --model '" + models_dir() + "/mistral' --input '" + in + "' --output '" + out +
                    "' --max-new-tokens 12 --batch-size 2",
                &err),
            0)
      << err;
  auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), ref["generations"].size() + 1);
  for (size_t i = 0; i < ref["generations"].size(); ++i) {
    EXPECT_EQ(lines[i]["ids"].get<std::vector<int64_t>>(), ref["generations"][i]["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(lines[i]["n_tokens"].get<int64_t>(), 12);
  }
  // text prompt without BOS = the same ids as prompt 3 ("Once upon a time")
  EXPECT_EQ(lines.back()["ids"], ref["generations"][3]["ids"]);
}

TEST(Cli, ErrorsAreOneLine) {
  const std::string bin = env("BITMERGE_BIN");
  std::string good = fs::absolute("engine_cli_good.jsonl").string();
  bm::write_file_atomic(good, "{\"context\": \"a\", \"continuation\": \" b\"}\n");
  std::string in = fs::absolute("engine_cli_bad.jsonl").string();
  bm::write_file_atomic(in, "{\"context\": \"a\"}\n");
  std::string err;
  EXPECT_EQ(run("'" + bin + "' score --model /nonexistent/model --input '" + good + "' --output '" + good + ".out'", &err),
            2);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("/nonexistent/model"), std::string::npos) << err;
  EXPECT_EQ(run("'" + bin + "' score --model '" + models_dir() + "/mistral' --input '" + in + "' --output '" + in +
                    ".out'",
                &err),
            2);
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(bm::file_exists(in + ".out"));
}

TEST(Cli, InspectCountsParametersPerRole) {
  const std::string bin = env("BITMERGE_BIN");
  auto m = bm::Transformer::load(models_dir() + "/llama_untied", torch::kCPU, torch::kFloat32);
  int64_t n = 0;
  for (auto& [name, t] : m->named_parameters()) n += t.numel();
  std::string outf = fs::absolute("engine_cli_inspect.txt").string(), err;
  ASSERT_EQ(run("'" + bin + "' inspect --model '" + models_dir() + "/llama_untied' > '" + outf + "'", &err), 0) << err;
  auto text = bm::read_text_file(outf);
  EXPECT_NE(text.find("LlamaForCausalLM"), std::string::npos) << text;
  EXPECT_NE(text.find("parameters:     " + std::to_string(n) + " "), std::string::npos) << text;
  EXPECT_NE(text.find("  attn_q 2 "), std::string::npos) << text;
  EXPECT_NE(text.find("  head 1 "), std::string::npos) << text;
  EXPECT_NE(text.find("bytes:          " + std::to_string(n * 4) + " "), std::string::npos) << text;
}

// ---- CUDA (skipped without a GPU; needs no Python or data) ----
// The CPU path is checked against HF above; here CUDA must agree with it on
// the same random weights, through the CUDA-only branches (additive masks,
// GQA inside SDPA, packed contexts, left padding, dropping finished rows).
namespace {
// A 3-layer Mistral-shaped model for the CUDA tests: GQA (8 query, 2 K/V
// heads) and a sliding window of 9, so the CUDA-only branches are exercised.
bm::ModelConfig cuda_test_config() {
  bm::ModelConfig c;
  c.architecture = "MistralForCausalLM";
  c.vocab_size = 512, c.hidden_size = 128, c.intermediate_size = 256, c.num_hidden_layers = 3;
  c.num_attention_heads = 8, c.num_key_value_heads = 2, c.head_dim = 16, c.sliding_window = 9;
  c.rope_theta = 20000, c.rms_norm_eps = 1e-5, c.max_position_embeddings = 128, c.eos_token_id = 2;
  return c;
}
// Random weights x5: larger logits, decisive argmaxes.
std::map<std::string, torch::Tensor> decisive_weights(const bm::ModelConfig& c, uint64_t seed) {
  std::map<std::string, torch::Tensor> w;
  auto m = bm::Transformer::random_init(c, seed, torch::kCPU, torch::kFloat32);  // held: the loop reads its map
  for (auto& [n, t] : m->named_parameters()) w[n] = t * 5;
  return w;
}
// The fp32 CPU reference and two bf16 CUDA models (the second with the fused
// paths off) of one wider model (head_dim 64, 4:1 GQA, window 24).
struct Bf16Trio {
  std::shared_ptr<bm::Transformer> cpu, fused, plain;
};
Bf16Trio bf16_trio(uint64_t seed) {
  bm::ModelConfig c = cuda_test_config();
  c.hidden_size = 512, c.intermediate_size = 1024, c.head_dim = 64, c.sliding_window = 24;
  const auto w = decisive_weights(c, seed);
  const torch::Device dev(torch::kCUDA);
  Bf16Trio t{std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32),
             std::make_shared<bm::Transformer>(c, w, dev, torch::kBFloat16),
             std::make_shared<bm::Transformer>(c, w, dev, torch::kBFloat16)};
  t.plain->set_fused_decode(false);
  return t;
}
}  // namespace

TEST(Cuda, MatchesCpuPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const bm::ModelConfig c = cuda_test_config();
  const auto w = decisive_weights(c, 11);
  auto cpu = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  auto gpu = std::make_shared<bm::Transformer>(c, w, torch::Device(torch::kCUDA), torch::kFloat32);
  auto gpu16 = std::make_shared<bm::Transformer>(c, w, torch::Device(torch::kCUDA), torch::kBFloat16);
  c10::InferenceMode g;
  auto tokens = torch::randint(3, 512, {3, 30}, torch::kInt64);
  auto ref = cpu->forward(tokens).logits;
  EXPECT_LE((gpu->forward(tokens).logits.cpu() - ref).abs().max().item<double>(), 1e-3);
  auto l16 = gpu16->forward(tokens).logits.cpu().to(torch::kFloat32);
  // bf16 rounding flips some argmaxes of this random model (0.89 on an H100)
  EXPECT_GE((l16.argmax(-1) == ref.argmax(-1)).to(torch::kFloat32).mean().item<double>(), 0.8);

  bm::EngineOptions o;
  o.batch_size = 3;
  o.check_every = 1;
  bm::Engine ecpu(cpu, nullptr, o), egpu(gpu, nullptr, o);
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs;
  auto row = [&](int r, int a, int b) {
    return std::vector<int64_t>(tokens[r].data_ptr<int64_t>() + a, tokens[r].data_ptr<int64_t>() + b);
  };
  for (int k = 0; k < 4; ++k) pairs.emplace_back(row(0, 0, 14), row(1, k, k + 1 + 3 * k));  // shared context
  pairs.emplace_back(row(2, 0, 5), row(2, 5, 29));
  pairs.emplace_back(row(1, 0, 20), row(0, 20, 22));
  auto a = ecpu.loglikelihood_tokens(pairs), b = egpu.loglikelihood_tokens(pairs);
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_NEAR(a[i].logprob, b[i].logprob, 2e-3) << i;
    EXPECT_EQ(a[i].is_greedy, b[i].is_greedy) << i;
  }
  std::vector<bm::Engine::TokenGenRequest> gr;
  const int64_t lens[] = {16, 4, 9};
  for (int r = 0; r < 3; ++r) gr.push_back({row(r, 0, 3 + 6 * r), {}, lens[r]});
  auto ga = ecpu.generate_tokens(gr), gb = egpu.generate_tokens(gr);
  // Greedy ids as the CPU's, except after a near tie that another GPU's
  // summation order may break the other way (the test must not depend on the
  // GPU model): then every GPU token, fed back through the CPU model, must be
  // within 2e-3 of the CPU's top logit at its position (a wrong cache slot,
  // mask or position is off by whole units with these weights).
  for (size_t i = 0; i < gr.size(); ++i) {
    ASSERT_FALSE(gb[i].ids.empty()) << i;
    EXPECT_LE(static_cast<int64_t>(gb[i].ids.size()), lens[i]) << i;
    if (ga[i].ids == gb[i].ids) continue;
    std::vector<int64_t> seq = gr[i].prompt;
    seq.insert(seq.end(), gb[i].ids.begin(), gb[i].ids.end());
    auto lg = cpu->forward(torch::tensor(seq, torch::kInt64).view({1, -1})).logits[0];
    const int64_t P = static_cast<int64_t>(gr[i].prompt.size());
    for (size_t j = 0; j < gb[i].ids.size(); ++j) {
      auto row = lg[P - 1 + static_cast<int64_t>(j)];
      const double gap = row.max().item<double>() - row[gb[i].ids[j]].item<double>();
      EXPECT_LE(gap, 2e-3) << "request " << i << " token " << j;
    }
  }
}

// The fused decode step (kernels/decode.hpp), here on the CPU through the
// libtorch references: the same values as the unfused per-row path, through
// GQA, the sliding window, rows at different slots and starts, weights
// updated in place after fusing, and the engine's continuous batching.
TEST(Engine, FusedDecodeEqualsUnfusedPath) {
  const bm::ModelConfig c = cuda_test_config();
  const auto w = decisive_weights(c, 13);
  auto plain = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  auto fused = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  ASSERT_FALSE(fused->fused_decode()) << "fp32 CPU models stay unfused by default";
  fused->set_fused_decode(true);
  ASSERT_TRUE(fused->fused_decode());
  for (auto& [n, t] : plain->named_parameters()) EXPECT_TRUE(torch::equal(t, fused->named_parameters().at(n))) << n;
  c10::InferenceMode g;
  // In-place updates of the named parameters (the routed bank's way) reach the fused weights.
  for (const char* n : {"model.layers.1.self_attn.k_proj.weight", "model.layers.2.mlp.up_proj.weight"}) {
    plain->named_parameters().at(n).mul_(0.5);
    fused->named_parameters().at(n).mul_(0.5);
  }
  auto tokens = torch::randint(3, 512, {3, 20}, torch::kInt64);
  auto ca = plain->make_cache(3, 40), cb = fused->make_cache(3, 40);
  // Prefill as the engine does: row b left-padded by start[b] slots, positions from 0 at start[b].
  auto start = torch::tensor(std::vector<int64_t>{0, 3, 6});
  auto ar = torch::arange(20, torch::kInt64).view({1, 20});
  bm::ForwardOptions pf;
  pf.attention_mask = ar >= start.view({3, 1});
  pf.positions = (ar - start.view({3, 1})).clamp_min(0);
  pf.cache = &ca;
  plain->forward(tokens, pf);
  pf.cache = &cb;
  fused->forward(tokens, pf);
  auto slot = torch::tensor(std::vector<int64_t>{20, 20, 20});
  auto tok = torch::randint(3, 512, {3, 1}, torch::kInt64);
  for (int step = 0; step < 14; ++step) {  // past the window of 9 keys
    bm::ForwardOptions so;
    so.cache_rows = slot;
    so.row_start = start;
    so.cache_pos = slot.max().item<int64_t>();
    so.cache = &ca;
    auto la = plain->forward(tok, so).logits;
    so.cache = &cb;
    auto lb = fused->forward(tok, so).logits;
    ASSERT_EQ(la.sizes(), lb.sizes());
    EXPECT_LE((la - lb).abs().max().item<double>(), 1e-4 * la.abs().max().item<double>()) << "step " << step;
    tok = la.argmax(-1);
    slot = slot + 1;
  }
  for (int l = 0; l < 3; ++l) {
    EXPECT_LE((ca.k[l] - cb.k[l]).abs().max().item<double>(), 1e-5 * ca.k[l].abs().max().item<double>()) << "K, layer " << l;
    EXPECT_LE((ca.v[l] - cb.v[l]).abs().max().item<double>(), 1e-5 * ca.v[l].abs().max().item<double>()) << "V, layer " << l;
  }
  EXPECT_TRUE(torch::equal(ca.pos, cb.pos)) << "cached positions";
  // The engine (continuous batching, refills, dropped rows) gives the same ids.
  std::vector<bm::Engine::TokenGenRequest> gr;
  for (int r = 0; r < 7; ++r) {
    bm::Engine::TokenGenRequest q;
    q.prompt.assign(tokens[r % 3].data_ptr<int64_t>(), tokens[r % 3].data_ptr<int64_t>() + 2 + (r * 5) % 17);
    q.max_new_tokens = 3 + (r * 7) % 19;
    gr.push_back(q);
  }
  bm::EngineOptions o;
  o.batch_size = 3;
  o.check_every = 4;
  bm::Engine ea(plain, nullptr, o), eb(fused, nullptr, o);
  auto ra = ea.generate_tokens(gr), rb = eb.generate_tokens(gr);
  for (size_t i = 0; i < gr.size(); ++i) EXPECT_EQ(ra[i].ids, rb[i].ids) << "request " << i;
}

// The fused whole-sequence path (set_fused_prefill), on the CPU through the
// libtorch references: the unfused path's logits through plain causal rows,
// a padding mask, packed continuations (full_mask), a cache prefill, and a
// sliding window shorter than the rows.
TEST(Engine, FusedPrefillEqualsUnfusedPath) {
  const bm::ModelConfig c = cuda_test_config();
  const auto w = decisive_weights(c, 17);
  auto plain = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  auto fused = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  fused->set_fused_prefill(true);
  EXPECT_FALSE(fused->fused_prefill()) << "needs the fused weights of the decode step";
  fused->set_fused_decode(true);
  ASSERT_TRUE(fused->fused_prefill());
  auto tokens = torch::randint(3, 512, {3, 21}, torch::kInt64);
  auto close = [](const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
    ASSERT_EQ(a.sizes(), b.sizes()) << what;
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * a.abs().max().item<double>()) << what;
  };
  c10::InferenceMode g;
  {
    close(plain->forward(tokens).logits, fused->forward(tokens).logits, "causal rows");
    auto start = torch::tensor(std::vector<int64_t>{0, 5, 12});
    auto ar = torch::arange(21, torch::kInt64).view({1, 21});
    bm::ForwardOptions pf;
    pf.attention_mask = ar >= start.view({3, 1});
    pf.positions = (ar - start.view({3, 1})).clamp_min(0);
    close(plain->forward(tokens, pf).logits, fused->forward(tokens, pf).logits, "left padding");
    bm::ForwardOptions fm;  // a context of 11 then two continuations that see it and themselves
    auto q = ar.view({21, 1}), k = ar.view({1, 21});
    auto seg = torch::where(ar < 11, 0, torch::where(ar < 16, 1, 2)).view({21});
    auto sq = seg.view({21, 1}), sk = seg.view({1, 21});
    fm.full_mask = ((k <= q) & ((sk == 0) | (sk == sq))).unsqueeze(0).expand({3, 21, 21});
    fm.positions = torch::where(ar < 11, ar, torch::where(ar < 16, ar, ar - 5)).expand({3, 21});
    fm.skip_logits = true;
    close(plain->forward(tokens, fm).final_hidden, fused->forward(tokens, fm).final_hidden, "packed continuations");
    auto ca = plain->make_cache(3, 30), cb = fused->make_cache(3, 30);
    bm::ForwardOptions co;
    co.cache = &ca;
    auto la = plain->forward(tokens, co).logits;
    co.cache = &cb;
    close(la, fused->forward(tokens, co).logits, "cache prefill");
    for (int l = 0; l < 3; ++l) close(ca.k[l], cb.k[l], "cached K, layer " + std::to_string(l));
    for (int l = 0; l < 3; ++l) close(ca.v[l], cb.v[l], "cached V, layer " + std::to_string(l));
  }
}

// Length groups (on by default on CUDA): each group gets its own cache length
// and row count; the ids are those of one big group.
TEST(Engine, LengthGroupsKeepResults) {
  const bm::ModelConfig c = cuda_test_config();
  auto m = std::make_shared<bm::Transformer>(c, decisive_weights(c, 15), torch::kCPU, torch::kFloat32);
  auto tokens = torch::randint(3, 512, {1, 100}, torch::kInt64);
  std::vector<bm::Engine::TokenGenRequest> gr;
  for (int r = 0; r < 12; ++r) {
    bm::Engine::TokenGenRequest q;
    const int len = r < 2 ? 90 - r : 2 + (r * 11) % 40;  // two long prompts, the rest short
    q.prompt.assign(tokens[0].data_ptr<int64_t>() + r, tokens[0].data_ptr<int64_t>() + r + len);
    q.max_new_tokens = 2 + (r * 3) % 7;
    gr.push_back(q);
  }
  bm::EngineOptions o;
  o.batch_size = 4;
  o.check_every = 2;
  o.length_groups = 0;
  bm::Engine one(m, nullptr, o);
  auto want = one.generate_tokens(gr);
  EXPECT_EQ(one.stats().gen_groups, 1);
  o.length_groups = 1;
  bm::Engine many(m, nullptr, o);
  auto got = many.generate_tokens(gr);
  EXPECT_GE(many.stats().gen_groups, 3) << "prompts of 90, ~40 and ~10 tokens need three cache lengths";
  for (size_t i = 0; i < gr.size(); ++i) EXPECT_EQ(got[i].ids, want[i].ids) << "request " << i;
}

// On the GPU the fused kernels run in bf16: as close to the fp32 CPU forward
// as the unfused bf16 path, step after step (a wrong slot, position or
// window would be off by whole units).
TEST(Cuda, FusedDecodeAsCloseToFp32AsUnfused) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto [cpu, fused, plain] = bf16_trio(14);
  ASSERT_TRUE(fused->fused_decode()) << "a bf16 CUDA model with head_dim 64 and 4:1 GQA must take the fused step";
  c10::InferenceMode g;
  auto tokens = torch::randint(3, 512, {4, 30}, torch::kInt64);
  std::vector<bm::KVCache> caches = {cpu->make_cache(4, 64), fused->make_cache(4, 64), plain->make_cache(4, 64)};
  std::vector<std::shared_ptr<bm::Transformer>> ms = {cpu, fused, plain};
  // Prefill as the engine does: row b left-padded by start[b] slots, positions from 0 at start[b].
  auto start = torch::tensor(std::vector<int64_t>{0, 4, 11, 29});
  auto ar = torch::arange(30, torch::kInt64).view({1, 30});
  for (size_t i = 0; i < 3; ++i) {
    bm::ForwardOptions pf;
    pf.attention_mask = ar >= start.view({4, 1});
    pf.positions = (ar - start.view({4, 1})).clamp_min(0);
    pf.cache = &caches[i];
    ms[i]->forward(tokens, pf);
  }
  auto slot = torch::tensor(std::vector<int64_t>{30, 30, 30, 30});
  auto tok = torch::randint(3, 512, {4, 1}, torch::kInt64);
  double worst_f = 0, worst_p = 0;
  int agree_f = 0, agree_p = 0, n = 0;
  for (int step = 0; step < 20; ++step) {
    std::vector<torch::Tensor> lg;
    for (size_t i = 0; i < 3; ++i) {
      bm::ForwardOptions so;
      so.cache_rows = slot.to(ms[i]->device());
      so.row_start = start.to(ms[i]->device());
      so.cache_pos = 30 + step;
      so.cache = &caches[i];
      lg.push_back(ms[i]->forward(tok, so).logits.to(torch::kCPU, torch::kFloat32));
    }
    const double scale = lg[0].abs().max().item<double>();
    worst_f = std::max(worst_f, (lg[1] - lg[0]).abs().max().item<double>() / scale);
    worst_p = std::max(worst_p, (lg[2] - lg[0]).abs().max().item<double>() / scale);
    auto want = lg[0].argmax(-1);
    agree_f += (lg[1].argmax(-1) == want).sum().item<int>();
    agree_p += (lg[2].argmax(-1) == want).sum().item<int>();
    n += 4;
    tok = want;  // every model follows the fp32 tokens
    slot = slot + 1;
  }
  // bf16 noise of this x5 model is large for both paths; the fused one must not add to it.
  EXPECT_LE(worst_f, 1.5 * worst_p + 0.01) << "fused " << worst_f << " vs unfused " << worst_p;
  EXPECT_GE(agree_f, agree_p - 4) << "argmax agreement with fp32: fused " << agree_f << "/" << n << ", unfused " << agree_p;
  EXPECT_GE(agree_f, n / 2);
}

// The fused whole-sequence path in bf16 on the GPU: scoring logits as close to
// the fp32 CPU forward as the unfused bf16 path (the float-noise bound of
// set_fused_prefill), on plain causal rows and on left-padded rows.
TEST(Cuda, FusedPrefillAsCloseToFp32AsUnfused) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto [cpu, fused, plain] = bf16_trio(18);
  fused->set_fused_prefill(true);
  ASSERT_TRUE(fused->fused_prefill());
  c10::InferenceMode g;
  auto tokens = torch::randint(3, 512, {6, 40}, torch::kInt64);
  auto start = torch::tensor(std::vector<int64_t>{0, 0, 3, 9, 17, 33});
  auto ar = torch::arange(40, torch::kInt64).view({1, 40});
  for (int padded = 0; padded < 2; ++padded) {
    bm::ForwardOptions o;
    if (padded) {
      o.attention_mask = ar >= start.view({6, 1});
      o.positions = (ar - start.view({6, 1})).clamp_min(0);
    }
    auto want = cpu->forward(tokens, o).logits;
    auto valid = padded ? (ar >= start.view({6, 1})) : torch::ones({6, 40}, torch::kBool);
    auto lf = fused->forward(tokens, o).logits.to(torch::kCPU, torch::kFloat32);
    auto lp = plain->forward(tokens, o).logits.to(torch::kCPU, torch::kFloat32);
    const double scale = want.abs().max().item<double>();
    auto vm = valid.unsqueeze(-1);
    const double worst_f = ((lf - want).abs() * vm).max().item<double>() / scale;
    const double worst_p = ((lp - want).abs() * vm).max().item<double>() / scale;
    auto am = want.argmax(-1);
    const int64_t n = valid.sum().item<int64_t>();
    const int64_t agree_f = ((lf.argmax(-1) == am) & valid).sum().item<int64_t>();
    const int64_t agree_p = ((lp.argmax(-1) == am) & valid).sum().item<int64_t>();
    EXPECT_LE(worst_f, 1.5 * worst_p + 0.01) << "padded " << padded << ": fused " << worst_f << " vs unfused " << worst_p;
    EXPECT_GE(agree_f, agree_p - n / 50 - 1) << "padded " << padded << ": argmax agreement with fp32, fused " << agree_f
                                              << "/" << n << ", unfused " << agree_p;
  }
}

// The trainer (harness/train) backpropagates through the same forward.
TEST(Engine, ForwardIsDifferentiable) {
  bm::ModelConfig c;
  c.vocab_size = 50, c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 4, c.sliding_window = 3;
  c.tie_word_embeddings = true, c.max_position_embeddings = 32;
  auto m = bm::Transformer::random_init(c, 3, torch::kCPU, torch::kFloat32);
  for (auto& [n, t] : m->named_parameters()) t.set_requires_grad(true);
  auto tokens = torch::randint(0, 50, {2, 7}, torch::kInt64);
  bm::ForwardOptions fo;
  fo.output_hidden_layer = 1;
  auto out = m->forward(tokens, fo);
  ASSERT_EQ(out.hidden.sizes(), torch::IntArrayRef({2, 7, 16}));
  auto loss = at::cross_entropy_loss(out.logits.reshape({-1, 50}).narrow(0, 0, 13), tokens.reshape({-1}).narrow(0, 1, 13));
  loss.backward();
  for (auto& [n, t] : m->named_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << n;
    EXPECT_GT(t.grad().abs().sum().item<double>(), 0.0) << n;
  }
}

// ---- continuous batching, token-budget scoring, memory plan (engineperf) ----
namespace {

// Greedy by full forwards without a cache, one request at a time.
std::vector<int64_t> oracle_greedy(const bm::Transformer& m, std::vector<int64_t> seq, int64_t max_new, int64_t eos) {
  c10::InferenceMode g;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < max_new; ++i) {
    auto t = torch::tensor(seq, torch::kInt64).view({1, -1});
    const int64_t id = m.forward(t).logits[0][-1].argmax().item<int64_t>();
    out.push_back(id);
    seq.push_back(id);
    if (id == eos) break;
  }
  return out;
}

// Mixed prompt lengths (1..~20 tokens) and budgets, from the reference tokens.
std::vector<bm::Engine::TokenGenRequest> mixed_requests(const std::string& model, size_t n) {
  auto tokens = read_ref(model, "tokens");
  const int64_t rows = tokens.size(0), T = tokens.size(1);
  std::vector<bm::Engine::TokenGenRequest> reqs;
  for (size_t i = 0; i < n; ++i) {
    const int64_t r = static_cast<int64_t>(i) % rows;
    const int64_t len = 1 + static_cast<int64_t>((i * 7) % static_cast<size_t>(std::min<int64_t>(T - 1, 19)));
    bm::Engine::TokenGenRequest q;
    q.prompt.assign(tokens[r].data_ptr<int64_t>(), tokens[r].data_ptr<int64_t>() + len);
    q.prompt[0] = tokens[(r + 1) % rows][static_cast<int64_t>(i) % T].item<int64_t>();  // vary starts
    q.max_new_tokens = 1 + static_cast<int64_t>((i * 5) % 13);
    reqs.push_back(q);
  }
  return reqs;
}

}  // namespace

TEST_P(PerModel, ContinuousBatchingEqualsPerRequestGreedy) {
  auto model = bm::Transformer::load(models_dir() + "/" + GetParam(), torch::kCPU, torch::kFloat32);
  auto reqs = mixed_requests(GetParam(), 11);
  const int64_t eos = model->config().eos_token_id;
  std::vector<std::vector<int64_t>> want;
  for (const auto& r : reqs) want.push_back(oracle_greedy(*model, r.prompt, r.max_new_tokens, eos));
  for (int64_t batch : {1, 3, 16}) {
    for (int64_t ce : {1, 8}) {
      bm::EngineOptions o;
      o.batch_size = batch;
      o.check_every = ce;
      bm::Engine eng(model, nullptr, o, GetParam());
      auto res = eng.generate_tokens(reqs);
      ASSERT_EQ(res.size(), reqs.size());
      for (size_t i = 0; i < reqs.size(); ++i)
        EXPECT_EQ(res[i].ids, want[i]) << GetParam() << " request " << i << " batch " << batch << " check_every " << ce;
      EXPECT_EQ(eng.stats().max_gen_rows, std::min<int64_t>(batch, 11));
      if (batch < 11) EXPECT_GT(eng.stats().refills, 1) << "slots were never refilled";
      // host syncs: at most one per check_every decode steps plus one per finished request/refill
      EXPECT_LE(eng.stats().host_syncs, eng.stats().decode_steps / ce + 2 * 11 + 1);
    }
  }
}

// EOS mid-generation: the engine's EOS is set to a token the oracle produces.
TEST(Engine, ContinuousBatchingStopsAtEosAndRefills) {
  auto base = bm::Transformer::load(models_dir() + "/llama_untied", torch::kCPU, torch::kFloat32);
  auto reqs = mixed_requests("llama_untied", 9);
  for (auto& r : reqs) r.max_new_tokens = 12;
  auto probe = oracle_greedy(*base, reqs[2].prompt, 12, -1);
  auto cfg = base->config();
  cfg.eos_token_id = probe[3];
  auto model = std::make_shared<bm::Transformer>(cfg, base->named_parameters(), torch::kCPU, torch::kFloat32);
  std::vector<std::vector<int64_t>> want;
  for (const auto& r : reqs) want.push_back(oracle_greedy(*model, r.prompt, r.max_new_tokens, cfg.eos_token_id));
  ASSERT_LE(want[2].size(), 4u);
  for (int64_t batch : {1, 3, 4}) {
    bm::EngineOptions o;
    o.batch_size = batch;
    o.check_every = 5;
    bm::Engine eng(model, nullptr, o, "eos");
    auto res = eng.generate_tokens(reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(res[i].ids, want[i]) << "request " << i << " batch " << batch;
      EXPECT_EQ(res[i].n_tokens, static_cast<int64_t>(want[i].size()));
    }
  }
}

TEST(Engine, ContinuousBatchingStopStringsMatchOneAtATime) {
  auto ref = read_json("llama_tied");
  auto one = make_engine("llama_tied", 1);
  std::vector<bm::GenerateRequest> reqs;
  const auto& gens = ref["generations"];
  for (size_t i = 0; i < 10; ++i) {
    const auto& g = gens[i % gens.size()];
    bm::GenerateRequest r;
    auto p = g["prompt_ids"].get<std::vector<int64_t>>();
    r.prompt_ids.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(1 + i % p.size()));
    r.max_new_tokens = 4 + static_cast<int64_t>(i % 9);
    reqs.push_back(r);
  }
  // Stop strings cut from each request's own unstopped text (so they do fire).
  auto plain = one->generate(reqs);
  int fired = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto& t = plain[i].text;
    if (i % 3 != 2 && t.size() >= 4) reqs[i].until = {t.substr(t.size() / 2, 2), "\x01never"};
  }
  std::vector<bm::GenerateResult> alone;
  for (const auto& r : reqs) alone.push_back(one->generate({r})[0]);
  for (size_t i = 0; i < reqs.size(); ++i) fired += alone[i].ids.size() < plain[i].ids.size();
  EXPECT_GE(fired, 2) << "stop strings never cut a generation short";
  for (int64_t batch : {2, 4, 7}) {
    auto eng = make_engine("llama_tied", batch);
    auto res = eng->generate(reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(res[i].ids, alone[i].ids) << i << " batch " << batch;
      EXPECT_EQ(res[i].text, alone[i].text) << i << " batch " << batch;
    }
  }
}

// Four single-token choices " A".." D" after one context: one forward row.
TEST(Engine, MultipleChoiceLettersCostOneRow) {
  auto eng = make_engine("mistral", 0);
  auto tokens = read_ref("mistral", "tokens");
  std::vector<int64_t> ctx(tokens[0].data_ptr<int64_t>(), tokens[0].data_ptr<int64_t>() + 15);
  const auto& tok = eng->tokenizer();
  std::vector<bm::LoglikelihoodRequest> reqs;
  for (const char* l : {"A", "B", "C", "D"}) {
    bm::LoglikelihoodRequest r;
    r.context = "Question: which one?\nAnswer:";
    r.continuation = std::string(" ") + l;
    reqs.push_back(r);
  }
  auto pairs0 = bm::encode_pair(tok, reqs[0].context, reqs[0].continuation, false);
  ASSERT_EQ(pairs0.second.size(), 1u) << "continuation ' A' is not one token";
  eng->reset_stats();
  auto res = eng->loglikelihood(reqs);
  EXPECT_EQ(eng->stats().score_forwards, 1);
  EXPECT_EQ(eng->stats().score_rows, 1);
  EXPECT_EQ(eng->stats().score_tokens, static_cast<int64_t>(pairs0.first.size()));
  for (size_t i = 0; i < 4; ++i) {
    auto alone = eng->loglikelihood({reqs[i]});
    EXPECT_NEAR(res[i].logprob, alone[0].logprob, 1e-5) << i;
    EXPECT_EQ(res[i].is_greedy, alone[0].is_greedy);
  }
  int greedy = 0;
  for (auto& r : res) greedy += r.is_greedy;
  EXPECT_LE(greedy, 1);
  (void)ctx;
}

// Scoring batches fill a token budget: same results as one row at a time.
TEST(Engine, TokenBudgetBatchesKeepResults) {
  auto ref = read_json("llama_tied");
  auto reqs = text_requests(ref["loglikelihood"]);
  auto one = make_engine("llama_tied", 1);
  auto want = one->loglikelihood(reqs);
  const int64_t rows_one = one->stats().score_rows;
  const int64_t total_tokens = one->stats().score_tokens;  // one row per forward: no padding
  for (int64_t budget : {int64_t{1}, total_tokens / 2, int64_t{100000}}) {
    bm::EngineOptions o;
    o.batch_size = 0;
    o.token_budget = budget;
    auto eng = bm::Engine::load(models_dir() + "/llama_tied", o);
    auto res = eng->loglikelihood(reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_NEAR(res[i].logprob, want[i].logprob, 1e-4) << i << " budget " << budget;
      EXPECT_EQ(res[i].is_greedy, want[i].is_greedy) << i;
    }
    const auto& s = eng->stats();
    EXPECT_EQ(s.score_rows, rows_one);
    if (budget == 1) EXPECT_EQ(s.score_forwards, rows_one);
    if (budget == 100000) EXPECT_EQ(s.score_forwards, 1);
    if (budget == total_tokens / 2) {
      EXPECT_GT(s.score_forwards, 1);
      if (rows_one >= 5) EXPECT_LT(s.score_forwards, rows_one);
      EXPECT_LE(s.score_tokens, s.score_forwards * budget + total_tokens);
    }
  }
}

TEST(Engine, BatchPlanFromSyntheticMemory) {
  auto cfg = [](int64_t H, int64_t I, int64_t L, int64_t nh, int64_t nkv) {
    bm::ModelConfig c;
    c.hidden_size = H, c.intermediate_size = I, c.num_hidden_layers = L, c.num_attention_heads = nh;
    c.num_key_value_heads = nkv, c.head_dim = H / nh, c.vocab_size = 32000;
    return c;
  };
  const int64_t GiB = int64_t{1} << 30;
  auto m7 = bm::memory_model(cfg(4096, 11008, 32, 32, 32), 2);
  auto m13 = bm::memory_model(cfg(5120, 13824, 40, 40, 40), 2);
  auto mis = bm::memory_model(cfg(4096, 14336, 32, 32, 8), 2);
  EXPECT_EQ(m7.kv_bytes_per_token, 2 * 32 * 32 * 128 * 2);  // 0.5 MiB per token
  EXPECT_EQ(m13.kv_bytes_per_token, 2 * 40 * 40 * 128 * 2);
  EXPECT_EQ(mis.kv_bytes_per_token, m7.kv_bytes_per_token / 4);
  struct Case { bm::MemoryModel m; int64_t weights; };
  for (const auto& [m, weights] : {Case{m7, 14 * GiB}, Case{m13, 26 * GiB}, Case{mis, 15 * GiB}}) {
    const int64_t free = 79 * GiB - weights;  // H100 80GB after loading the weights
    for (int64_t cache_len : {300, 1300, 4096}) {
      auto p = bm::plan_batches(m, free, cache_len, 1);
      const int64_t used = p.gen_rows * cache_len * m.kv_bytes_per_token +
                           p.prefill_tokens * (m.act_bytes_per_token + m.kv_bytes_per_token) + m.fixed_bytes;
      EXPECT_LE(used, free) << cache_len;
      EXPECT_GE(p.gen_rows, cache_len <= 1300 ? 16 : 4) << "batch too small to be useful, cache_len " << cache_len;
      EXPECT_LE(p.gen_rows, bm::kMaxGenRows);
      EXPECT_GE(p.prefill_tokens, cache_len);  // at least one long prompt per prefill
    }
    for (int64_t row_len : {64, 1024, 4096}) {
      auto p = bm::plan_batches(m, free, 1, row_len);
      EXPECT_LE(p.score_tokens * (m.act_bytes_per_token + 6 * row_len) + m.fixed_bytes, free);
      EXPECT_GE(p.score_tokens, 4 * row_len) << row_len;
    }
    // Less memory, smaller batches; none left, one row at a time.
    auto big = bm::plan_batches(m, free, 1300, 1300), small = bm::plan_batches(m, free / 3, 1300, 1300);
    EXPECT_LT(small.gen_rows, big.gen_rows);
    EXPECT_LE(small.score_tokens, big.score_tokens);
    auto none = bm::plan_batches(m, GiB / 2, 1300, 1300);
    EXPECT_EQ(none.gen_rows, 1);
    EXPECT_EQ(none.score_tokens, 1);
  }
}

// Continuous batching and auto sizing on the GPU (fp32: same ids as CPU).
TEST(Cuda, ContinuousBatchingAndAutoSizing) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const bm::ModelConfig c = cuda_test_config();
  const auto w = decisive_weights(c, 12);
  auto cpu = std::make_shared<bm::Transformer>(c, w, torch::kCPU, torch::kFloat32);
  auto gpu = std::make_shared<bm::Transformer>(c, w, torch::Device(torch::kCUDA), torch::kFloat32);
  auto tokens = torch::randint(3, 512, {9, 40}, torch::kInt64);
  std::vector<bm::Engine::TokenGenRequest> gr;
  for (int r = 0; r < 9; ++r) {
    bm::Engine::TokenGenRequest q;
    q.prompt.assign(tokens[r].data_ptr<int64_t>(), tokens[r].data_ptr<int64_t>() + 1 + (r * 7) % 30);
    q.max_new_tokens = 2 + (r * 5) % 17;
    gr.push_back(q);
  }
  bm::EngineOptions o;
  o.batch_size = 1;
  bm::Engine ecpu(cpu, nullptr, o);
  auto want = ecpu.generate_tokens(gr);
  // CUDA graphs on (the default) and off: the same ids as the CPU path, through
  // refills (batch 2, 4) and the tail that drops finished rows (new graphs).
  for (bool graphs : {true, false})
    for (int64_t batch : {0, 2, 4}) {
      o.batch_size = batch;
      o.check_every = 8;
      o.cuda_graphs = graphs;
      o.length_groups = 0;  // one group: auto sizing must give every request a row
      bm::Engine egpu(gpu, nullptr, o);
      if (batch == 0) EXPECT_GT(egpu.free_device_bytes(), int64_t{1} << 30);
      auto got = egpu.generate_tokens(gr);
      for (size_t i = 0; i < gr.size(); ++i)
        EXPECT_EQ(got[i].ids, want[i].ids) << i << " batch " << batch << " graphs " << graphs;
      if (batch == 0) EXPECT_EQ(egpu.stats().max_gen_rows, 9) << "auto sizing chose a tiny batch";
      if (batch == 2) EXPECT_GT(egpu.stats().refills, 2);
      if (graphs && egpu.use_cuda_graphs()) {
        EXPECT_GT(egpu.stats().graph_captures, 0) << "batch " << batch;
        EXPECT_GE(egpu.stats().graph_replays, egpu.stats().graph_captures) << "batch " << batch;
        // two rows for the whole queue: one (rows, KV bucket) graph, replayed on and on
        if (batch == 2) EXPECT_GT(egpu.stats().graph_replays, 4 * egpu.stats().graph_captures);
      } else {
        EXPECT_EQ(egpu.stats().graph_replays, 0);
      }
    }
}
