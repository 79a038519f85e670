// Trainer for the mini family: next-token cross-entropy on packed rows,
// AdamW, linear warmup + cosine decay, global-norm gradient clipping.
// Uses the project's forward (bm::Transformer), so what is trained is exactly
// what the engine evaluates. Deterministic for a given seed and thread count.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "harness/models/tokenizer.hpp"
#include "harness/models/transformer.hpp"

namespace bm::train {

struct TrainConfig {
  int64_t steps = 100;
  int64_t batch_size = 8;
  int64_t seq_len = 128;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 10;
  double weight_decay = 0.01;  // matrices only; norms are not decayed
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // <= 0: off
  uint64_t seed = 0;
  std::string canonical_text() const;  // every field, for cache keys
};

// Packed training rows: tokens [N, seq_len] int64 and per-token loss weights
// [N, seq_len] float (weight of predicting that token from the ones before).
struct PackedData {
  torch::Tensor tokens, weights;
  int64_t n_examples = 0, n_truncated = 0;
};

struct TextExample {
  std::string prompt, completion;
};

// Each example becomes [BOS on even-numbered examples] + tokens(prompt + completion) + EOS (tokenized as
// one string, split at the prompt's token count as lm-eval does); examples are
// packed whole into rows (a new row when the next does not fit; longer ones
// keep their last seq_len tokens). Loss weight 1 on completion tokens and EOS, and on the
// prompt too when `loss_on_prompt`; 0 on BOS and padding.
PackedData pack_examples(const Tokenizer& tok, const std::vector<TextExample>& examples, int64_t seq_len,
                         bool loss_on_prompt);

struct TrainStats {
  double first_loss = 0, final_loss = 0;  // first step; mean of the last 10% of steps
  std::vector<double> losses;             // per step
  double seconds = 0;
  int64_t tokens_seen = 0;
};

// Trains `model` in place (parameters get requires_grad during the call).
// Rows are visited in seeded shuffled epochs. `label` names the progress bar.
TrainStats train_model(Transformer& model, const PackedData& data, const TrainConfig& cfg, const std::string& label);

// Mean weighted loss of `data` (no grad), in batches.
double evaluate_loss(const Transformer& model, const PackedData& data, int64_t batch_size);

// Learning rate at `step` (0-based): linear warmup to lr, then cosine to lr * min_lr_ratio.
double lr_at(const TrainConfig& cfg, int64_t step);

// Saves the model as an HF directory (config.json, model.safetensors in
// float32, tokenizer files from tokenizer_dir) via write_model_dir.
void save_model(const Transformer& model, const std::string& out_dir, const std::string& tokenizer_dir,
                const std::string& provenance_json);

}  // namespace bm::train
