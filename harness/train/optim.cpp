#include "harness/train/optim.hpp"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>

namespace bm::train {

torch::Tensor portable_sqrt(const torch::Tensor& x) {
  return at::where(x > 0, x * at::rsqrt(x), at::zeros_like(x));
}

void PortableAdam::add_group(std::vector<torch::Tensor> params, AdamConfig cfg) {
  Group g;
  g.cfg = cfg;
  for (auto& p : params) {
    g.exp_avg.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    g.exp_avg_sq.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  }
  g.params = std::move(params);
  groups_.push_back(std::move(g));
}

void PortableAdam::set_lr(double lr) {
  for (auto& g : groups_) g.cfg.lr = lr;
}

void PortableAdam::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.mutable_grad().defined()) p.mutable_grad() = torch::Tensor();
}

void PortableAdam::step() {
  torch::NoGradGuard ng;
  for (auto& g : groups_) {
    const AdamConfig& c = g.cfg;
    g.b1_pow *= c.beta1;
    g.b2_pow *= c.beta2;
    const double bc1 = 1.0 - g.b1_pow, bc2 = 1.0 - g.b2_pow;
    const double step_size = c.lr / bc1, bc2_sqrt = std::sqrt(bc2);  // scalar sqrt: one IEEE instruction
    for (size_t i = 0; i < g.params.size(); ++i) {
      auto& p = g.params[i];
      if (!p.grad().defined()) continue;
      torch::Tensor grad = p.grad();
      if (c.weight_decay != 0) {
        if (c.decoupled) p.mul_(1.0 - c.lr * c.weight_decay);
        else grad = grad.add(p, c.weight_decay);
      }
      g.exp_avg[i].mul_(c.beta1).add_(grad, 1.0 - c.beta1);
      g.exp_avg_sq[i].mul_(c.beta2).addcmul_(grad, grad, 1.0 - c.beta2);
      auto denom = (portable_sqrt(g.exp_avg_sq[i]) / bc2_sqrt).add_(c.eps);
      p.addcdiv_(g.exp_avg[i], denom, -step_size);
    }
  }
}

}  // namespace bm::train
