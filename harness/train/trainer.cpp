#include "harness/train/trainer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/log.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/train/optim.hpp"

namespace bm::train {

std::string TrainConfig::canonical_text() const {
  std::ostringstream o;
  o.precision(17);
  o << "train-v1 steps=" << steps << " batch=" << batch_size << " seq=" << seq_len << " lr=" << lr
    << " min_lr_ratio=" << min_lr_ratio << " warmup=" << warmup_steps << " wd=" << weight_decay << " b1=" << beta1
    << " b2=" << beta2 << " eps=" << eps << " clip=" << grad_clip << " seed=" << seed;
  return o.str();
}

PackedData pack_examples(const Tokenizer& tok, const std::vector<TextExample>& examples, int64_t seq_len,
                         bool loss_on_prompt) {
  if (seq_len < 8) fail("seq_len", "must be at least 8, got " + std::to_string(seq_len));
  std::vector<int64_t> toks;
  std::vector<float> wts;
  PackedData out;
  int64_t used = 0;  // tokens in the current row
  auto pad_row = [&] {
    for (; used > 0 && used < seq_len; ++used) {
      toks.push_back(tok.eos_id());
      wts.push_back(0.f);
    }
    used = 0;
  };
  for (const auto& ex : examples) {
    // BOS on every other example: evaluation contexts come without BOS
    // (lm-eval's default) and generation prompts may come with it.
    std::vector<int64_t> ids;
    if (out.n_examples % 2 == 0) ids.push_back(tok.bos_id());
    std::vector<int64_t> body = tok.encode(ex.prompt + ex.completion, false);
    size_t n_prompt = ex.prompt.empty() ? 0 : tok.encode(ex.prompt, false).size();
    n_prompt = std::min(n_prompt, body.size());
    std::vector<float> w(ids.size(), 0.f);
    for (size_t i = 0; i < body.size(); ++i) {
      ids.push_back(body[i]);
      w.push_back(i < n_prompt && !loss_on_prompt ? 0.f : 1.f);
    }
    ids.push_back(tok.eos_id());
    w.push_back(1.f);
    if (int64_t(ids.size()) > seq_len) {
      // Keep the end: the completion and the part of the prompt next to it
      // (e.g. the question after a long few-shot primer).
      ids.erase(ids.begin(), ids.end() - seq_len);
      w.erase(w.begin(), w.end() - seq_len);
      ++out.n_truncated;
    }
    if (used + int64_t(ids.size()) > seq_len) pad_row();
    toks.insert(toks.end(), ids.begin(), ids.end());
    wts.insert(wts.end(), w.begin(), w.end());
    used += int64_t(ids.size());
    if (used == seq_len) used = 0;
    ++out.n_examples;
  }
  pad_row();
  int64_t rows = int64_t(toks.size()) / seq_len;
  if (rows == 0) fail("training data", "no examples to train on");
  out.tokens = torch::tensor(toks, torch::kInt64).view({rows, seq_len});
  out.weights = torch::tensor(wts, torch::kFloat32).view({rows, seq_len});
  return out;
}

double lr_at(const TrainConfig& cfg, int64_t step) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) return cfg.lr * double(step + 1) / double(cfg.warmup_steps);
  int64_t span = std::max<int64_t>(1, cfg.steps - cfg.warmup_steps);
  double p = std::min(1.0, double(step - cfg.warmup_steps) / double(span));
  double cosine = 0.5 * (1.0 + std::cos(M_PI * p));
  return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine);
}

namespace {

torch::Tensor batch_loss(const Transformer& model, const torch::Tensor& tokens, const torch::Tensor& weights) {
  auto out = model.forward(tokens);
  auto logits = out.logits.slice(1, 0, tokens.size(1) - 1).to(torch::kFloat32);
  auto target = tokens.slice(1, 1);
  auto w = weights.slice(1, 1);
  auto ce = torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), target.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto wf = w.reshape({-1});
  return (ce * wf).sum() / wf.sum().clamp_min(1.0);
}

// Splitmix64 for the row order: reproducible independent of torch's RNG.
uint64_t mix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

TrainStats train_model(Transformer& model, const PackedData& data, const TrainConfig& cfg, const std::string& label) {
  if (cfg.steps <= 0 || cfg.batch_size <= 0) fail(label, "steps and batch_size must be positive");
  if (data.tokens.size(1) > model.config().max_position_embeddings)
    fail(label, "seq_len " + std::to_string(data.tokens.size(1)) + " exceeds max_position_embeddings " +
                    std::to_string(model.config().max_position_embeddings));
  const auto dev = model.device();
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& [name, p] : model.named_parameters()) {
    p.set_requires_grad(true);
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
  }
  // AdamW with CPU-independent bits (harness/train/optim.hpp); no decay on vectors.
  PortableAdam opt;
  opt.add_group(decay, AdamConfig{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, true});
  opt.add_group(no_decay, AdamConfig{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, 0.0, true});

  const int64_t n_rows = data.tokens.size(0);
  std::vector<int64_t> order;
  size_t pos = 0;
  uint64_t rng = cfg.seed * 0x2545F4914F6CDD1Dull + 17;
  auto next_rows = [&](int64_t n) {
    std::vector<int64_t> idx;
    while (int64_t(idx.size()) < n) {
      if (pos >= order.size()) {
        order.resize(size_t(n_rows));
        for (int64_t i = 0; i < n_rows; ++i) order[size_t(i)] = i;
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[mix(rng) % i]);
        pos = 0;
      }
      idx.push_back(order[pos++]);
    }
    return torch::tensor(idx, torch::kInt64);
  };

  TrainStats st;
  auto t0 = std::chrono::steady_clock::now();
  Progress bar(label, cfg.steps);
  for (int64_t step = 0; step < cfg.steps; ++step) {
    double lr = lr_at(cfg, step);
    opt.set_lr(lr);
    auto idx = next_rows(cfg.batch_size);
    auto tokens = data.tokens.index_select(0, idx).to(dev);
    auto weights = data.weights.index_select(0, idx).to(dev);
    opt.zero_grad();
    auto loss = batch_loss(model, tokens, weights);
    loss.backward();
    if (cfg.grad_clip > 0) {
      std::vector<torch::Tensor> all = decay;
      all.insert(all.end(), no_decay.begin(), no_decay.end());
      torch::nn::utils::clip_grad_norm_(all, cfg.grad_clip);
    }
    opt.step();
    double l = loss.item<double>();
    if (!std::isfinite(l)) fail(label, "loss became " + std::to_string(l) + " at step " + std::to_string(step) +
                                           "; lower the learning rate in the config");
    st.losses.push_back(l);
    st.tokens_seen += tokens.numel();
    char buf[64];
    std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e", l, lr);
    bar.advance(1, buf);
  }
  bar.finish();
  for (auto& [name, p] : model.named_parameters()) {
    p.set_requires_grad(false);
    p.mutable_grad() = torch::Tensor();
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  st.first_loss = st.losses.front();
  size_t tail = std::max<size_t>(1, st.losses.size() / 10);
  double s = 0;
  for (size_t i = st.losses.size() - tail; i < st.losses.size(); ++i) s += st.losses[i];
  st.final_loss = s / double(tail);
  return st;
}

double evaluate_loss(const Transformer& model, const PackedData& data, int64_t batch_size) {
  torch::NoGradGuard ng;
  double num = 0, den = 0;
  for (int64_t i = 0; i < data.tokens.size(0); i += batch_size) {
    int64_t j = std::min(data.tokens.size(0), i + batch_size);
    auto t = data.tokens.slice(0, i, j).to(model.device());
    auto w = data.weights.slice(0, i, j).to(model.device());
    double ws = w.slice(1, 1).sum().item<double>();
    num += batch_loss(model, t, w).item<double>() * std::max(1.0, ws);
    den += std::max(1.0, ws);
  }
  return num / den;
}

void save_model(const Transformer& model, const std::string& out_dir, const std::string& tokenizer_dir,
                const std::string& provenance_json) {
  std::vector<std::string> names;
  std::vector<std::pair<DType, std::vector<int64_t>>> infos;
  for (const auto& [name, t] : model.named_parameters()) {
    names.push_back(name);
    infos.push_back({DType::F32, t.sizes().vec()});
  }
  ModelConfig c = model.config();
  c.torch_dtype = "float32";
  ModelWriteOptions wo;
  wo.provenance_json = provenance_json;
  const auto& params = model.named_parameters();
  write_model_dir(out_dir, c, names, infos,
                  [&](const std::string& n) { return params.at(n).detach().to(torch::kCPU, torch::kFloat32).contiguous(); },
                  tokenizer_dir, wo);
}

}  // namespace bm::train
