// The libtorch LanguageModel: batched log-likelihood (lm-eval semantics) and
// greedy generation with a preallocated KV cache.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "harness/engine/requests.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/models/transformer.hpp"

namespace bm {

struct EngineOptions {
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda:N"
  std::string dtype;           // "float32" | "bfloat16" | "float16"; empty = float32 on CPU, bfloat16 on CUDA
  int64_t batch_size = 32;     // rows per forward
  // BOS before text requests. Default false = lm-evaluation-harness's HF
  // backend default (add_bos_token=False) for both request types.
  bool add_bos = false;
  int64_t max_length = 0;  // 0 = config.json's max_position_embeddings
  // Generation: host checks stop strings / EOS every this many steps (fewer
  // syncs; extra tokens past a stop are discarded, results are unchanged).
  int64_t check_every = 8;
};

torch::Device parse_device(const std::string& s);                           // throws naming --device
torch::Dtype parse_dtype_name(const std::string& s, torch::Device device);  // throws naming --dtype
const char* dtype_label(torch::Dtype d);                                    // "float32", ...

// lm-eval's split: trailing spaces of the context move to the continuation,
// the whole string is encoded, and the continuation is what follows the
// context's own encoding. An empty context becomes [BOS].
std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const Tokenizer& tok, const std::string& context,
                                                                  const std::string& continuation, bool add_bos);

class Engine : public LanguageModel {
 public:
  Engine(std::shared_ptr<Transformer> model, std::shared_ptr<Tokenizer> tokenizer, EngineOptions opts,
         std::string model_name = "");
  static std::unique_ptr<Engine> load(const std::string& model_dir, const EngineOptions& opts);

  std::vector<LoglikelihoodResult> loglikelihood(const std::vector<LoglikelihoodRequest>& reqs) override;
  std::vector<GenerateResult> generate(const std::vector<GenerateRequest>& reqs) override;
  std::string description() const override;

  // Token-level entry points (ids used exactly as given).
  std::vector<LoglikelihoodResult> loglikelihood_tokens(
      const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& pairs);
  struct TokenGenRequest {
    std::vector<int64_t> prompt;
    std::vector<std::string> until;
    int64_t max_new_tokens = 256;
  };
  std::vector<GenerateResult> generate_tokens(const std::vector<TokenGenRequest>& reqs);

  const Transformer& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return need_tokenizer(); }
  const Tokenizer& need_tokenizer() const;  // throws when the model directory has no tokenizer.model
  int64_t bos_id() const;                   // tokenizer's, else config.json's
  int64_t eos_id() const;
  const EngineOptions& options() const { return opts_; }
  int64_t max_length() const { return max_len_; }

 private:
  std::shared_ptr<Transformer> model_;
  std::shared_ptr<Tokenizer> tok_;
  EngineOptions opts_;
  std::string name_;
  std::string fingerprint_;  // Checkpoint::fingerprint() when loaded from a directory
  int64_t max_len_;
};

}  // namespace bm
