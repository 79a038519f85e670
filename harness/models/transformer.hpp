// The LLaMA / Mistral forward in libtorch (owner: engine). One code path for
// inference (engine/, router features) and training (harness/train): no
// in-place ops on parameters, no NoGradGuard inside; callers add guards.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/models/model_config.hpp"

namespace bm {

class Checkpoint;

// Preallocated per-layer K/V of shape [B, n_kv_heads, max_len, head_dim].
// pos [B, max_len] holds each cached token's position (sliding window is
// measured in positions, so left padding never changes results).
struct KVCache {
  std::vector<torch::Tensor> k, v;
  torch::Tensor pos;
  int64_t max_len = 0;
};

struct ForwardOptions {
  // [B, T] int64 positions of the tokens (for RoPE); default arange(T) + past length.
  std::optional<torch::Tensor> positions;
  // [B, T_total] bool, true = real token (left or right padding); default all true.
  std::optional<torch::Tensor> attention_mask;
  KVCache* cache = nullptr;  // when set, appends this step's K/V at cache_pos
  int64_t cache_pos = 0;
  int64_t output_hidden_layer = -1;  // >= 0: also return hidden state after that many layers (0 = embeddings, unnormed)
  // [B, T, T_total] bool, true = query t may attend key s. Replaces the causal
  // + padding mask (the sliding window is still applied on positions). Used to
  // pack several continuations of one shared context into one row. Every
  // query must be allowed at least one key (e.g. itself).
  std::optional<torch::Tensor> full_mask;
  // Skip the LM head: `final_hidden` holds the normed last hidden state, and
  // Transformer::lm_head() computes logits for only the rows needed.
  bool skip_logits = false;
  // Per-row cache write (continuous batching; needs cache and T == 1): row b's
  // K/V/pos go to cache slot cache_rows[b] ([B] int64 on the model device)
  // instead of cache_pos. Keys 0..cache_pos are visible (cache_pos = the
  // largest write index); attention_mask [B, cache_pos + 1] (or row_start,
  // below) is required and must allow row b exactly its own valid keys
  // (including cache_rows[b]); no implicit causal/self key is added.
  std::optional<torch::Tensor> cache_rows;
  // With cache_rows: [B] int64, row b's first valid slot. Row b then sees
  // exactly slots [row_start[b], cache_rows[b]] (within the sliding window) at
  // position cache_rows[b] - row_start[b]; attention_mask and positions may be
  // left out. This is the form the fused decode step takes (set_fused_decode).
  std::optional<torch::Tensor> row_start;
};

struct ForwardOutput {
  torch::Tensor logits;  // [B, T, V] (float32 on CPU; model dtype on CUDA unless upcast)
  torch::Tensor hidden;  // [B, T, H] when output_hidden_layer >= 0
  torch::Tensor final_hidden;  // [..., H] after the final norm, when skip_logits
};

class Transformer {
 public:
  // Takes weights by HF name (model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, ...),
  // moved to `device` in `dtype`. Checks every shape against the config (error names the tensor).
  Transformer(const ModelConfig& config, std::map<std::string, torch::Tensor> weights, torch::Device device,
              torch::Dtype dtype);
  // Any directory Checkpoint::open reads (safetensors, sharded, .bin, LoRA folded).
  static std::shared_ptr<Transformer> load(const std::string& model_dir, torch::Device device, torch::Dtype dtype);
  static std::shared_ptr<Transformer> from_checkpoint(const Checkpoint& ck, torch::Device device, torch::Dtype dtype);
  // Fresh random init (std 0.02 normal, norms = 1) for training from scratch.
  static std::shared_ptr<Transformer> random_init(const ModelConfig& config, uint64_t seed, torch::Device device,
                                                  torch::Dtype dtype);

  ForwardOutput forward(const torch::Tensor& tokens, const ForwardOptions& opts = {}) const;
  KVCache make_cache(int64_t batch, int64_t max_len) const;
  // Logits of final (normed) hidden states [..., H] -> [..., V].
  torch::Tensor lm_head(const torch::Tensor& final_hidden) const;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }
  // Named parameters in HF names; tensors are the live parameters (set
  // requires_grad on them to train; replace values under NoGradGuard).
  std::map<std::string, torch::Tensor>& named_parameters() { return weights_; }
  const std::map<std::string, torch::Tensor>& named_parameters() const { return weights_; }

  // The fused decode step (kernels/decode.hpp): one-token-per-row forwards
  // with cache_rows + row_start run RMSNorm (residual add folded in),
  // RoPE + cache write, flash-decoding attention over each row's own keys and
  // SiLU*up as single kernels, with q/k/v and gate/up as one GEMM each. Turning
  // it on stores q|k|v and gate|up of every layer in one tensor each; the
  // named parameters become views of them (in-place updates still reach the
  // forward; replacing a map entry would not, so do not). On by default for
  // 16-bit CUDA models whose head_dim / GQA the kernels cover, unless
  // BITMERGE_FUSED_DECODE=0; elsewhere it runs the libtorch references (tests).
  void set_fused_decode(bool on);
  bool fused_decode() const { return fused_decode_; }
  // The same fusion for whole-sequence forwards (scoring, prefill) of a model
  // with the fused decode step on: residual add + RMSNorm and SiLU*up as one
  // kernel each, q|k|v and gate|up as one GEMM each; RoPE and attention as in
  // the unfused path. Equal to it up to reduction order (float noise, bounded
  // by Cuda.FusedPrefillAsCloseToFp32AsUnfused). Off by default until measured
  // (bench/RESULTS.md); BITMERGE_FUSED_PREFILL=1 turns it on. Only without
  // autograd (the kernels have no backward) and without output_hidden_layer.
  void set_fused_prefill(bool on) { fused_prefill_ = on; }
  bool fused_prefill() const { return fused_prefill_ && fused_decode_; }

 private:
  ModelConfig config_;
  std::map<std::string, torch::Tensor> weights_;
  torch::Device device_;
  torch::Dtype dtype_;
  torch::Tensor inv_freq_;  // RoPE [D/2] fp32 on device_, computed once
  bool fused_decode_ = false;
  bool fused_prefill_ = false;
  std::vector<torch::Tensor> qkv_w_, gate_up_w_;  // per layer, when fused

  ForwardOutput decode_fused(const torch::Tensor& tokens, const ForwardOptions& opts) const;
  void finish(const torch::Tensor& fin, const ForwardOptions& opts, ForwardOutput& out) const;
};

}  // namespace bm
