// The engine's two request types, as lm-evaluation-harness defines them.
// Torch-free: tasks/ depends only on this header and LanguageModel.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm {

// log P(continuation | context). With *_ids set, ids are used exactly as
// given (no BOS added); otherwise text is tokenized the lm-eval way (whole
// string encoded, split at the context's length; trailing context spaces
// move onto the continuation) with BOS per EngineOptions::add_bos.
struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
  std::vector<int64_t> context_ids;
  std::vector<int64_t> continuation_ids;
};

struct LoglikelihoodResult {
  double logprob = 0;
  bool is_greedy = false;  // every continuation token is the argmax
  int64_t n_tokens = 0;    // continuation tokens
};

struct GenerateRequest {
  std::string prompt;
  std::vector<int64_t> prompt_ids;  // used as-is when non-empty
  std::vector<std::string> until;   // stop strings (text is cut before the first)
  int64_t max_new_tokens = 256;
};

struct GenerateResult {
  std::string text;          // decoded continuation, cut at the first stop string
  std::vector<int64_t> ids;  // generated ids (before cutting at a stop string: all produced)
  int64_t n_tokens = 0;
};

// A model that answers requests. The libtorch engine implements it; tests of
// tasks/ implement it with fakes. Results are in request order.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual std::vector<LoglikelihoodResult> loglikelihood(const std::vector<LoglikelihoodRequest>& reqs) = 0;
  virtual std::vector<GenerateResult> generate(const std::vector<GenerateRequest>& reqs) = 0;
  // For provenance in results: model fingerprint, dtype, device, BOS setting...
  virtual std::string description() const { return ""; }
};

}  // namespace bm
