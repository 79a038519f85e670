// The 1bit-Merging / Routing router: features = mean over prompt tokens of
// the base model's hidden state after `layer` layers (0 = embeddings); a
// small MLP (Linear-ReLU-Linear) trained with cross-entropy on prompts from
// each expert's domain, one list per benchmark format, taken in turn:
// chat = MMLU dev, plus a HellaSwag train split and TruthfulQA-format train
// questions; math = GSM8K train, plus MATH_train.jsonl; code = MBPP task_ids
// 601..974, plus HumanEval_train.jsonl.gz. The "plus" files are used where the
// data directory has them: the mini family writes all four from non-test
// items; the real benchmarks' directory has none of them.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "harness/models/tokenizer.hpp"
#include "harness/models/transformer.hpp"

namespace bm::runner {

struct RouterData {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;  // index into the domain list
};

// Up to `per_domain` prompts per domain (0 = all), chosen with `seed`, each in
// its benchmark's evaluation prompt; errors name the missing file.
RouterData router_training_data(const std::string& data_dir, const std::vector<std::string>& domains, int per_domain,
                                uint64_t seed);

// [N, H] float32 features on CPU.
torch::Tensor router_features(const Transformer& base, const Tokenizer& tok, const std::vector<std::string>& texts,
                              int layer, int64_t max_tokens = 512, int64_t batch = 16);

class Router {
 public:
  Router() = default;
  Router(int64_t in_dim, int64_t hidden, int64_t n_classes, uint64_t seed);
  // Full-batch Adam on standardized features; returns training accuracy.
  double train(const torch::Tensor& x, const torch::Tensor& y, int epochs, double lr);
  torch::Tensor logits(const torch::Tensor& x) const;
  std::vector<int64_t> predict(const torch::Tensor& x) const;
  void save(const std::string& path) const;  // atomic
  static Router load(const std::string& path);
  int64_t classes() const { return w2_.defined() ? w2_.size(0) : 0; }

 private:
  torch::Tensor w1_, b1_, w2_, b2_, mean_, std_;
};

}  // namespace bm::runner
