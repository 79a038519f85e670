// BitDelta scale distillation (Liu et al. 2024, "BitDelta: Your Fine-Tune May
// Only Be Worth One Bit"): the expert's task vector at a position is stored as
// alpha * sign(delta) per matrix (the paper's 1-bit scheme); BitDelta keeps the
// signs and fits each matrix's alpha to the expert's logits on calibration
// text. alpha starts at mean|delta| (the sign scheme's value), then only the
// alphas are trained (PortableAdam, harness/train/optim.hpp) to minimise the
// mean squared difference between the compressed model's logits and the full
// expert's. Everything outside the position keeps the expert's weights, as the
// packed file keeps those deltas in full precision. Scheme `bitdelta`
// (harness/models/arch.hpp); written by `bitmerge compress --position P:bitdelta --calib FILE`.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "harness/models/arch.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/models/transformer.hpp"
#include "harness/train/bitdelta_config.hpp"  // BitDeltaConfig, BitDeltaCalibration (torch-free)

namespace bm::train {

struct BitDeltaFit {
  std::map<std::string, float> init, fitted;  // tensor name -> alpha (init = mean|delta|)
  double loss_init = 0, loss_final = 0;       // mean logit MSE over all calibration rows
  std::vector<double> losses;                 // per step (the step's batch, before the update)
};

// base and expert: models of the same config on CPU in float32. tokens: [N, T]
// int64 calibration rows. Throws bm::Error when nothing is compressed at
// `position` or the models' shapes differ.
BitDeltaFit fit_bitdelta_scales(const Transformer& base, const Transformer& expert, Position position,
                                const torch::Tensor& tokens, const BitDeltaConfig& cfg);

// The calibration logit MSE of base + alpha * sign(delta) at `position` (rest = expert) for given alphas.
double bitdelta_logit_mse(const Transformer& base, const Transformer& expert, Position position,
                          const std::map<std::string, float>& alphas, const torch::Tensor& tokens, int64_t batch_size);

// Calibration rows from a file: .jsonl lines with "text", or "prompt" + "completion"
// (the mini family's corpus files); otherwise plain text. Tokenized with BOS per
// example, concatenated and cut into `rows` rows of `seq_len` tokens (fewer
// when the text runs out; an error when not even one row fits).
torch::Tensor calibration_rows(const Tokenizer& tok, const std::string& path, int64_t rows, int64_t seq_len);

}  // namespace bm::train
