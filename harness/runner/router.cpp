#include "harness/runner/router.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <dirent.h>
#include <random>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/train/optim.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/task.hpp"

namespace bm::runner {
namespace {

// A domain's prompts: one list per paper benchmark of that domain, each in its
// own evaluation prompt (the task's router_prompts: MMLU dev, GSM8K train and
// MBPP 601..974 required, the others where the data directory has them), so
// the caller can balance the formats.
std::vector<std::vector<std::string>> domain_prompts(const std::string& data_dir, const std::string& domain) {
  std::vector<std::vector<std::string>> out;
  for (const auto& name : bm::paper_task_names()) {
    auto task = bm::make_task(name);
    if (task->domain() != domain) continue;
    auto p = task->router_prompts(data_dir);
    if (!p.empty()) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

RouterData router_training_data(const std::string& data_dir, const std::vector<std::string>& domains, int per_domain,
                                uint64_t seed) {
  RouterData d;
  std::mt19937_64 rng(seed);
  for (size_t k = 0; k < domains.size(); ++k) {
    const auto known = bm::task_domains();
    if (std::find(known.begin(), known.end(), domains[k]) == known.end())
      bm::fail("router", "no training data for domain '" + domains[k] + "'; use " + bm::join(known, ", ") +
                             ", or router.mode = \"oracle\"");
    std::vector<std::vector<std::string>> formats = domain_prompts(data_dir, domains[k]);
    // Shuffle each format, then take them in turn, so a capped domain keeps
    // every format (as many of each as it has, up to an equal share).
    std::vector<std::string> p;
    size_t longest = 0;
    for (auto& f : formats) std::shuffle(f.begin(), f.end(), rng), longest = std::max(longest, f.size());
    for (size_t i = 0; i < longest; ++i)
      for (auto& f : formats)
        if (i < f.size()) p.push_back(f[i]);
    if (p.empty()) bm::fail(data_dir, "no router training prompts for domain '" + domains[k] + "'");
    if (per_domain > 0 && static_cast<int>(p.size()) > per_domain) p.resize(static_cast<size_t>(per_domain));
    for (auto& t : p) d.texts.push_back(t), d.labels.push_back(static_cast<int64_t>(k));
  }
  return d;
}

torch::Tensor router_features(const Transformer& base, const Tokenizer& tok, const std::vector<std::string>& texts,
                              int layer, int64_t max_tokens, int64_t batch) {
  torch::NoGradGuard ng;
  if (layer > base.config().num_hidden_layers)
    bm::fail("router.layer", std::to_string(layer) + " exceeds the base's " +
                                 std::to_string(base.config().num_hidden_layers) + " layers; pick a smaller layer");
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < texts.size(); s += static_cast<size_t>(batch)) {
    size_t e = std::min(texts.size(), s + static_cast<size_t>(batch));
    std::vector<std::vector<int64_t>> ids;
    int64_t T = 1;
    for (size_t i = s; i < e; ++i) {
      auto v = tok.encode(texts[i], true);
      if (static_cast<int64_t>(v.size()) > max_tokens) v.resize(static_cast<size_t>(max_tokens));
      if (v.empty()) v.push_back(tok.bos_id());
      T = std::max<int64_t>(T, static_cast<int64_t>(v.size()));
      ids.push_back(std::move(v));
    }
    int64_t B = static_cast<int64_t>(ids.size());
    auto tokens = torch::zeros({B, T}, torch::kLong);
    auto mask = torch::zeros({B, T}, torch::kBool);
    for (int64_t b = 0; b < B; ++b) {
      auto n = static_cast<int64_t>(ids[b].size());
      tokens[b].narrow(0, 0, n).copy_(torch::tensor(ids[b], torch::kLong));
      mask[b].narrow(0, 0, n).fill_(true);
    }
    ForwardOptions fo;
    fo.attention_mask = mask.to(base.device());
    fo.output_hidden_layer = layer;
    auto h = base.forward(tokens.to(base.device()), fo).hidden.to(torch::kFloat32).cpu();  // [B,T,H]
    auto m = mask.unsqueeze(-1).to(torch::kFloat32);
    out.push_back((h * m).sum(1) / m.sum(1).clamp_min(1));
  }
  return torch::cat(out, 0);
}

Router::Router(int64_t in, int64_t hidden, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  double s1 = 1.0 / std::sqrt(static_cast<double>(in)), s2 = 1.0 / std::sqrt(static_cast<double>(hidden));
  w1_ = (torch::rand({hidden, in}) * 2 - 1) * s1;
  b1_ = torch::zeros({hidden});
  w2_ = (torch::rand({n, hidden}) * 2 - 1) * s2;
  b2_ = torch::zeros({n});
  mean_ = torch::zeros({in});
  std_ = torch::ones({in});
}

torch::Tensor Router::logits(const torch::Tensor& x) const {
  auto z = (x.to(torch::kFloat32) - mean_) / std_;
  return torch::relu(z.matmul(w1_.t()) + b1_).matmul(w2_.t()) + b2_;
}

double Router::train(const torch::Tensor& x, const torch::Tensor& y, int epochs, double lr) {
  mean_ = x.mean(0);
  std_ = x.std(0).clamp_min(1e-5);
  for (auto* t : {&w1_, &b1_, &w2_, &b2_}) t->set_requires_grad(true);
  // Adam (L2 1e-4) with CPU-independent bits (harness/train/optim.hpp).
  bm::train::PortableAdam opt;
  bm::train::AdamConfig ac;
  ac.lr = lr;
  ac.weight_decay = 1e-4;
  ac.decoupled = false;
  opt.add_group({w1_, b1_, w2_, b2_}, ac);
  const int64_t n = x.size(0), bs = 64;
  for (int ep = 0; ep < std::max(1, epochs); ++ep) {
    auto perm = torch::randperm(n, torch::kLong);
    for (int64_t s = 0; s < n; s += bs) {
      auto idx = perm.narrow(0, s, std::min(bs, n - s));
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(logits(x.index_select(0, idx)), y.index_select(0, idx));
      loss.backward();
      opt.step();
    }
  }
  for (auto* t : {&w1_, &b1_, &w2_, &b2_}) *t = t->detach().set_requires_grad(false);
  torch::NoGradGuard ng;
  return logits(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
}

std::vector<int64_t> Router::predict(const torch::Tensor& x) const {
  torch::NoGradGuard ng;
  auto p = logits(x).argmax(1).contiguous();
  return std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
}

void Router::save(const std::string& path) const {
  std::vector<torch::Tensor> v = {w1_, b1_, w2_, b2_, mean_, std_};
  AtomicFile f(path);
  torch::save(v, f.stream());
  f.commit();
}

Router Router::load(const std::string& path) {
  std::vector<torch::Tensor> v;
  try {
    torch::load(v, path);
  } catch (const c10::Error& e) {
    bm::fail(path, "cannot read the saved router; delete it to retrain");
  }
  if (v.size() != 6) bm::fail(path, "not a bitmerge router file; delete it to retrain");
  Router r;
  r.w1_ = v[0], r.b1_ = v[1], r.w2_ = v[2], r.b2_ = v[3], r.mean_ = v[4], r.std_ = v[5];
  return r;
}

}  // namespace bm::runner
