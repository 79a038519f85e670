// libtorch reference of the 1-bit kernels; see onebit_ref.hpp for the
// arithmetic contract the CUDA kernels follow.
#include "kernels/onebit_ref.hpp"

#include <torch/torch.h>

namespace bm::kernels::ref {
namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

torch::Tensor unpack_sign_pm1(const torch::Tensor& bits, int64_t numel) {
  auto opts = torch::TensorOptions().dtype(torch::kUInt8).device(bits.device());
  auto shifts = torch::arange(8, opts);
  auto b = bits.reshape({-1, 1}).bitwise_right_shift(shifts).bitwise_and(1);  // [nbytes, 8]
  auto flat = b.reshape({-1}).narrow(0, 0, numel).to(torch::kFloat32);
  return flat * 2.0f - 1.0f;
}

float add_coefficient(const Packed& p, double scale) {
  const double a = static_cast<double>(p.alpha.to(torch::kCPU).to(torch::kFloat32).item<float>());
  return static_cast<float>(scale * a);
}

Packed pack_signs(const torch::Tensor& delta) {
  Packed out;
  out.shape = delta.sizes().vec();
  const int64_t n = delta.numel();
  const int64_t nbytes = (n + 7) / 8;
  auto flat = delta.contiguous().reshape({-1});
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8).device(delta.device());
  // bit = 1 for x >= 0 (so +0, -0 -> +1; NaN -> 0).
  auto pos = flat.ge(0).to(torch::kUInt8);
  if (nbytes * 8 != n) pos = torch::cat({pos, torch::zeros({nbytes * 8 - n}, u8)});
  auto weights = torch::tensor({1, 2, 4, 8, 16, 32, 64, 128}, torch::TensorOptions().dtype(torch::kInt32))
                     .to(delta.device());
  out.bits = (pos.reshape({nbytes, 8}).to(torch::kInt32) * weights).sum(1).to(torch::kUInt8);
  double alpha = 0.0;
  if (n > 0) alpha = flat.abs().to(torch::kFloat64).sum().item<double>() / static_cast<double>(n);
  out.alpha = torch::tensor(static_cast<float>(alpha), torch::TensorOptions().dtype(torch::kFloat32))
                  .to(torch::kFloat16)
                  .to(delta.device());
  return out;
}

torch::Tensor unpack_signs(const Packed& p, torch::Dtype dtype) {
  const int64_t n = numel_of(p.shape);
  const float a = p.alpha.to(torch::kCPU).to(torch::kFloat32).item<float>();
  auto v = unpack_sign_pm1(p.bits, n) * a;
  return v.to(dtype).reshape(p.shape);
}

void add_packed_(torch::Tensor& w, const Packed& p, double scale) {
  const float c = add_coefficient(p, scale);
  auto s = unpack_sign_pm1(p.bits, w.numel()).reshape(w.sizes());
  auto sum = w.to(torch::kFloat32) + s * c;  // s*c is exact (s = +-1)
  w.copy_(sum);                              // rounds to w's dtype (nearest even)
}

torch::Tensor ties_combine(const std::vector<DeltaRef>& deltas, const std::vector<int64_t>& shape,
                           const CombineOptions& opts) {
  const int64_t n = numel_of(shape);
  torch::Device dev = deltas.front().dense.defined() ? deltas.front().dense.device()
                                                     : deltas.front().packed->bits.device();
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  std::vector<torch::Tensor> v;
  std::vector<float> w;
  for (const auto& d : deltas) {
    const float wk = static_cast<float>(d.weight);
    torch::Tensor x;
    if (d.dense.defined()) {
      x = d.dense.contiguous().reshape({-1}).to(torch::kFloat32);
    } else {
      const float a = d.packed->alpha.to(torch::kCPU).to(torch::kFloat32).item<float>();
      x = unpack_sign_pm1(d.packed->bits, n) * a;
    }
    v.push_back(x * wk);
    w.push_back(wk);
  }
  auto num = torch::zeros({n}, f32);
  auto den = torch::zeros({n}, f32);
  if (opts.sign_consensus) {
    auto total = torch::zeros({n}, f32);
    for (auto& vk : v) total = total + vk;
    auto positive = total.ge(0);
    for (size_t k = 0; k < v.size(); ++k) {
      auto kept = torch::where(positive, v[k].gt(0), v[k].lt(0));
      num = num + torch::where(kept, v[k], torch::zeros_like(v[k]));
      den = den + kept.to(torch::kFloat32) * w[k];
    }
    if (opts.disjoint_mean) den = torch::where(den.eq(0), torch::ones_like(den), den);
  } else {
    float wsum = 0.0f;
    for (size_t k = 0; k < v.size(); ++k) {
      num = num + v[k];
      wsum += w[k];
    }
    if (std::fabs(wsum) < 1e-8f) wsum = 1.0f;
    den.fill_(wsum);
  }
  auto out = opts.disjoint_mean ? num / den : num;
  return out.reshape(shape);
}

}  // namespace bm::kernels::ref
