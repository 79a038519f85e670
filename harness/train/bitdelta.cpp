#include "harness/train/bitdelta.hpp"

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/train/optim.hpp"

namespace bm::train {
namespace {

bool covered(Position p, const std::string& name, const torch::Tensor& t) {
  return t.dim() == 2 && position_covers(p, classify_tensor(name).role);
}

// The compressed model: expert weights, with the matrices at `position` as
// base + alpha * sign(expert - base). alphas and signs by tensor name.
struct Student {
  std::map<std::string, torch::Tensor> base_w, signs, alphas;  // alphas: 0-d fp32
  std::shared_ptr<Transformer> model;
  void refresh() {
    auto& w = model->named_parameters();
    for (auto& [n, s] : signs) w[n] = base_w.at(n) + alphas.at(n) * s;
  }
};

Student make_student(const Transformer& base, const Transformer& expert, Position position) {
  const auto& bw = base.named_parameters();
  const auto& ew = expert.named_parameters();
  Student st;
  std::map<std::string, torch::Tensor> weights;
  for (auto& [n, b] : bw) {
    auto it = ew.find(n);
    if (it == ew.end() || it->second.sizes() != b.sizes())
      fail("bitdelta: " + n, "the expert lacks this tensor or its shape differs from the base's; fit against the base the expert was fine-tuned from");
    auto bf = b.detach().to(torch::kFloat32);
    auto ef = it->second.detach().to(torch::kFloat32);
    if (covered(position, n, b)) {
      auto d = ef - bf;
      st.base_w[n] = bf;
      st.signs[n] = torch::where(d >= 0, torch::ones_like(d), -torch::ones_like(d));  // sign(0) = +1, as kernels/onebit
      st.alphas[n] = d.abs().mean().detach().clone();
      weights[n] = bf.clone();
    } else {
      weights[n] = ef.clone();
    }
  }
  if (st.signs.empty())
    fail("bitdelta", std::string("no matrix is compressed at position '") + position_name(position) +
                         "'; use attention, mlp or linear");
  st.model = std::make_shared<Transformer>(base.config(), std::move(weights), torch::Device(torch::kCPU), torch::kFloat32);
  return st;
}

double mse_all(Student& st, const Transformer& expert, const torch::Tensor& tokens, int64_t bs) {
  torch::NoGradGuard ng;
  st.refresh();
  double sum = 0;
  int64_t n = tokens.size(0);
  for (int64_t i = 0; i < n; i += bs) {
    auto x = tokens.narrow(0, i, std::min(bs, n - i));
    auto t = expert.forward(x).logits;
    auto s = st.model->forward(x).logits;
    sum += (s - t).pow(2).mean().item<double>() * static_cast<double>(x.size(0));
  }
  return sum / static_cast<double>(n);
}

void check_tokens(const torch::Tensor& tokens) {
  if (!tokens.defined() || tokens.dim() != 2 || tokens.size(0) < 1 || tokens.size(1) < 2)
    fail("bitdelta calibration", "needs [rows, seq_len] tokens with at least one row of 2 tokens");
}

}  // namespace

std::string BitDeltaConfig::canonical_text() const {
  std::ostringstream os;
  os << "steps=" << steps << " batch_size=" << batch_size << " lr=" << lr << " loss=logit_mse optim=adam";
  return os.str();
}

BitDeltaFit fit_bitdelta_scales(const Transformer& base, const Transformer& expert, Position position,
                                const torch::Tensor& tokens, const BitDeltaConfig& cfg) {
  check_tokens(tokens);
  if (cfg.steps < 0 || cfg.batch_size < 1 || !(cfg.lr > 0))
    fail("bitdelta", "steps must be >= 0, batch size >= 1 and lr > 0");
  Student st = make_student(base, expert, position);
  BitDeltaFit fit;
  for (auto& [n, a] : st.alphas) fit.init[n] = a.item<float>();
  fit.loss_init = mse_all(st, expert, tokens, cfg.batch_size);
  std::vector<torch::Tensor> params;
  for (auto& [n, a] : st.alphas) {
    a.set_requires_grad(true);
    params.push_back(a);
  }
  PortableAdam opt;
  AdamConfig ac;
  ac.lr = cfg.lr;
  ac.weight_decay = 0.0;
  opt.add_group(params, ac);
  const int64_t N = tokens.size(0);
  Progress prog("bitdelta", cfg.steps);
  for (int64_t step = 0; step < cfg.steps; ++step) {
    auto idx = (torch::arange(cfg.batch_size, torch::kInt64) + step * cfg.batch_size) % N;
    auto x = tokens.index_select(0, idx);
    torch::Tensor target;
    {
      torch::NoGradGuard ng;
      target = expert.forward(x).logits;
    }
    opt.zero_grad();
    st.refresh();
    auto loss = (st.model->forward(x).logits - target).pow(2).mean();
    loss.backward();
    opt.step();
    fit.losses.push_back(loss.item<double>());
    prog.advance();
  }
  prog.finish();
  for (auto& [n, a] : st.alphas) {
    a.set_requires_grad(false);
    fit.fitted[n] = a.item<float>();
  }
  fit.loss_final = mse_all(st, expert, tokens, cfg.batch_size);
  return fit;
}

double bitdelta_logit_mse(const Transformer& base, const Transformer& expert, Position position,
                          const std::map<std::string, float>& alphas, const torch::Tensor& tokens, int64_t batch_size) {
  check_tokens(tokens);
  Student st = make_student(base, expert, position);
  for (auto& [n, a] : st.alphas) {
    auto it = alphas.find(n);
    if (it == alphas.end()) fail("bitdelta: " + n, "no alpha given for this matrix");
    a = torch::full({}, it->second, torch::kFloat32);
  }
  return mse_all(st, expert, tokens, batch_size);
}

torch::Tensor calibration_rows(const Tokenizer& tok, const std::string& path, int64_t rows, int64_t seq_len) {
  if (rows < 1 || seq_len < 2) fail("--calib", "needs at least 1 row of at least 2 tokens");
  std::string text = read_text_file(path);
  std::vector<std::string> docs;
  const bool jsonl = path.size() > 6 && path.substr(path.size() - 6) == ".jsonl";
  if (jsonl) {
    std::istringstream is(text);
    std::string line;
    int64_t ln = 0;
    while (std::getline(is, line)) {
      ++ln;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception&) {
        fail(path + ":" + std::to_string(ln), "not a JSON line; give .jsonl lines with \"text\" or \"prompt\"/\"completion\", or a plain-text file");
      }
      if (j.contains("text")) docs.push_back(j["text"].get<std::string>());
      else if (j.contains("prompt") || j.contains("completion"))
        docs.push_back(j.value("prompt", std::string()) + j.value("completion", std::string()));
      else
        fail(path + ":" + std::to_string(ln), "has neither \"text\" nor \"prompt\"/\"completion\"");
    }
  } else {
    docs.push_back(text);
  }
  std::vector<int64_t> ids;
  const size_t need = static_cast<size_t>(rows * seq_len);
  for (auto& d : docs) {
    auto e = tok.encode(d, true);
    ids.insert(ids.end(), e.begin(), e.end());
    if (ids.size() >= need) break;
  }
  int64_t got = std::min<int64_t>(rows, static_cast<int64_t>(ids.size()) / seq_len);
  if (got < 1)
    fail(path, "holds " + std::to_string(ids.size()) + " tokens, fewer than one calibration row of " +
                   std::to_string(seq_len) + "; give more text or a smaller --calib-seq-len");
  ids.resize(static_cast<size_t>(got * seq_len));
  return torch::tensor(ids, torch::kInt64).reshape({got, seq_len});
}

}  // namespace bm::train
