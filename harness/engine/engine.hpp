// The libtorch LanguageModel: batched log-likelihood (lm-eval semantics) and
// greedy generation with a preallocated KV cache.
#pragma once
#include <torch/types.h>

#include <map>
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
  // Rows per forward (scoring) / concurrent sequences (generation). 0 = auto:
  // from free GPU memory on CUDA (plan_batches), fixed on CPU. An explicit
  // value is still capped by the memory plan on CUDA.
  int64_t batch_size = 0;
  // Scoring: tokens (rows x padded length) per forward. 0 = auto (memory plan
  // on CUDA, kCpuTokenBudget on CPU).
  int64_t token_budget = 0;
  // BOS before text requests (both request types). The CLI and the runner set
  // it from resolve_add_bos (harness/models/tokenizer_config.hpp): an explicit
  // choice, else the checkpoint's tokenizer_config.json add_bos_token as
  // lm-eval 0.4.x's HF backend; false when neither says.
  bool add_bos = false;
  int64_t max_length = 0;  // 0 = config.json's max_position_embeddings
  // Generation: host checks stop strings / EOS every this many steps (fewer
  // syncs; extra tokens past a stop are discarded, results are unchanged).
  int64_t check_every = 8;
  // CUDA: decode steps replayed as CUDA graphs (one per rows x KV bucket).
  // BITMERGE_CUDA_GRAPHS=0 in the environment turns them off too.
  bool cuda_graphs = true;
  // Generation: the KV cache spans a group's longest prompt, and the rows that
  // fit follow from it, so requests are run in length groups (longest first;
  // a group holds the requests needing more than half its first one's slots).
  // -1 = on CUDA only, 0 = off (one group), 1 = on.
  int length_groups = -1;
  // A model directory without tokenizer.model but with tokenizer.json (repos
  // that ship only that) uses this directory's tokenizer.model once the ids
  // are checked to agree (Tokenizer::load_for_model_dir): the family base.
  std::string tokenizer_fallback;
};

// Batch sizing from free device memory. Pure arithmetic (unit-tested with
// synthetic numbers); Engine feeds it the model's shapes and the CUDA
// allocator's free memory.
struct MemoryModel {
  int64_t kv_bytes_per_token = 0;   // K+V over all layers
  int64_t act_bytes_per_token = 0;  // transient activations per forwarded token (one layer live + hidden states)
  int64_t fixed_bytes = 0;          // LM-head chunk, workspace, allocator slack
  // Per cached slot, temporaries of a decode step as a fraction 1/kv_temp_div of
  // its K/V bytes (4: the unfused step's repeated K/V, masks and scores; the
  // fused decode step reads the cache in place).
  int64_t kv_temp_div = 4;
};
MemoryModel memory_model(const ModelConfig& c, int64_t dtype_bytes);
struct BatchPlan {
  int64_t gen_rows = 1;         // concurrent generation sequences (KV cache rows)
  int64_t prefill_tokens = 1;   // tokens per prefill forward in generation
  int64_t score_tokens = 1;     // tokens per scoring forward
};
// free_bytes: memory usable now; cache_len: KV slots per generation row;
// max_row_len: longest scoring row (its T x T mask counts per token).
BatchPlan plan_batches(const MemoryModel& m, int64_t free_bytes, int64_t cache_len, int64_t max_row_len);
constexpr int64_t kCpuTokenBudget = 8192;
constexpr int64_t kCpuGenRows = 32;
constexpr int64_t kMaxGenRows = 256;
constexpr int64_t kMaxScoreTokens = 65536;
constexpr int64_t kKvBucket = 128;  // CUDA graphs: attention spans a multiple of this many cache slots

torch::Device parse_device(const std::string& s);                           // throws naming --device
torch::Dtype parse_dtype_name(const std::string& s, torch::Device device);  // throws naming --dtype
const char* dtype_label(torch::Dtype d);                                    // "float32", ...

// lm-eval's split: trailing spaces of the context move to the continuation,
// the whole string is encoded, and the continuation is what follows the
// context's own encoding. An empty context becomes [BOS].
std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const Tokenizer& tok, const std::string& context,
                                                                  const std::string& continuation, bool add_bos);
// One text as lm-eval's HFLM.tok_encode: a text that starts with the BOS
// token's text (a chat template's "<s>", tokenizer piece of bos_id) is encoded
// as [BOS] + the rest, with no second BOS (lm-eval's has_bos_prefix); any other
// text gets BOS iff add_bos.
std::vector<int64_t> encode_text(const Tokenizer& tok, const std::string& text, bool add_bos);

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

  // Work counters (tests check packing and batching; benches may print them).
  struct Stats {
    int64_t score_forwards = 0, score_rows = 0, score_tokens = 0;  // tokens = rows x padded length
    int64_t prefill_forwards = 0, prefill_rows = 0, decode_steps = 0, refills = 0, host_syncs = 0;
    int64_t max_gen_rows = 0;  // largest concurrent generation batch
    int64_t gen_groups = 0;    // generation length groups run (EngineOptions::length_groups)
    int64_t graph_captures = 0, graph_replays = 0;  // CUDA graphs captured; decode steps run from a graph
  };
  const Stats& stats() const { return stats_; }
  void reset_stats() { stats_ = Stats{}; }
  // Free memory the plans may use (CUDA: driver free + allocator cached-but-unused; CPU: 0).
  int64_t free_device_bytes() const;
  // CUDA: one small forward (context, cuBLAS handles, kernels loaded), as an
  // HF peer's warm-up call; returns its seconds. No-op on CPU.
  double warmup();
  // Whether generation replays decode steps as CUDA graphs (CUDA build, CUDA
  // device, options and BITMERGE_CUDA_GRAPHS allow it).
  bool use_cuda_graphs() const;

 private:
  std::shared_ptr<Transformer> model_;
  std::shared_ptr<Tokenizer> tok_;
  EngineOptions opts_;
  std::string name_;
  std::string fingerprint_;  // Checkpoint::fingerprint() when loaded from a directory
  std::string tokenizer_note_;  // which tokenizer.model, when not the model directory's own
  int64_t max_len_;
  Stats stats_;
  // BITMERGE_ENGINE_PROFILE=1: wall seconds per phase (the device is
  // synchronised at each phase end, so phases do not overlap), logged per call.
  bool profile_ = false;
  std::map<std::string, double> prof_;
  double prof_now() const;
  void prof_tick(const char* phase, double& t0);
  void prof_report(const char* what);
  int64_t gen_rows_for(int64_t cache_len) const;
  int64_t score_token_budget(int64_t max_row_len) const;
  void generate_group(const std::vector<TokenGenRequest>& reqs, const std::vector<std::vector<int64_t>>& prompts,
                      const std::vector<size_t>& order, const std::vector<size_t>& longest,
                      std::vector<std::vector<int64_t>>& ids, double& t_phase);
  void prefill_into(KVCache& cache, const std::vector<std::vector<int64_t>>& prompts,
                    const std::vector<int64_t>& slots, std::vector<int64_t>& start, std::vector<int64_t>& wpos,
                    torch::Tensor& next, torch::Tensor& first_out);
};

// Memory a new allocation on `dev` may use: CUDA driver free + the caching
// allocator's reserved-but-unused blocks (a model freed just before still sits
// there); 0 on CPU. The one home of this rule (engine batch plans, routed bank).
int64_t device_free_bytes(const torch::Device& dev);

}  // namespace bm
