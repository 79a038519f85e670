#include "merging/general.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "harness/core/error.hpp"

namespace bm::merging {

torch::Tensor trim_magnitude(const torch::Tensor& d, double density) {
  if (density >= 1.0) return d;
  int64_t n = d.numel();
  if (density <= 0.0 || n == 0) return torch::zeros_like(d);
  // As mergekit: at least one entry survives a positive density.
  auto k = std::max<int64_t>(1, static_cast<int64_t>(density * static_cast<double>(n)));
  auto flat = d.reshape({-1});
  auto a = flat.abs();
  // k-th largest |d| by selection (cheaper than topk for large k, CPU and CUDA);
  // entries equal to it are added in index order until exactly k are kept.
  float thr = std::get<0>(torch::kthvalue(a, n - k + 1)).item<float>();
  auto mask = a > thr;
  int64_t need = k - mask.sum().item<int64_t>();
  if (need > 0) {
    auto eq = torch::nonzero(a == thr).reshape({-1}).narrow(0, 0, need);
    mask.index_fill_(0, eq, true);
  }
  return (flat * mask).reshape(d.sizes());
}

static uint64_t mix_seed(uint64_t seed, const std::string& expert, const std::string& tensor) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over "expert\0tensor"
  auto eat = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  };
  eat(expert);
  h = (h ^ 0) * 1099511628211ull;
  eat(tensor);
  uint64_t z = seed ^ h;  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

torch::Tensor dare_drop(const torch::Tensor& d, double density, uint64_t seed, const std::string& expert,
                        const std::string& tensor, bool rescale) {
  if (density >= 1.0) return d;
  if (density <= 0.0) return torch::zeros_like(d);
  // The mask is drawn on the CPU so CPU and CUDA merges are bit-identical.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, expert, tensor));
  auto r = torch::rand(d.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
  auto keep = (r < density).to(d.device());
  auto out = d * keep;
  if (rescale) out = out / density;
  return out;
}

torch::Tensor general_merge(const TensorJob& job, const GeneralSettings& s, const torch::Tensor& base,
                            const std::vector<int>& experts) {
  const Params& P = *job.params;
  double lambda = P.f("lambda");
  int64_t rows = base.dim() == 0 ? 1 : base.size(0);
  for (int k : experts) rows = std::min(rows, job.deltas[k].rows());
  bool full_rows = base.dim() == 0 || rows == base.size(0);
  std::vector<int64_t> shape(base.sizes().begin(), base.sizes().end());
  if (!shape.empty()) shape[0] = rows;
  bool trim_global = P.has("trim") && P.s("trim") == "global";

  std::vector<torch::Tensor> dense(experts.size());
  std::vector<double> w(experts.size());
  for (size_t j = 0; j < experts.size(); ++j) {
    int k = experts[j];
    const std::string& en = job.expert_names[k];
    const Delta& D = job.deltas[k];
    w[j] = P.f("weight", en);
    double density = (s.sparsify == Sparsify::None) ? 1.0 : P.f("density", en);
    bool keep_packed = D.is_packed && full_rows && density >= 1.0;
    if (keep_packed) continue;  // handed to the kernels packed
    torch::Tensor d = D.to_dense();
    if (!full_rows && d.dim() > 0 && d.size(0) != rows) d = d.narrow(0, 0, rows);
    if (s.sparsify == Sparsify::Magnitude) {
      if (trim_global) {
        if (density < 1.0) {
          if (!job.global_thresholds) fail(job.name, "internal: global trim without thresholds");
          double thr = (*job.global_thresholds)[k];
          d = d * (d.abs() >= thr);
        }
      } else {
        d = trim_magnitude(d, density);
      }
    } else if (s.sparsify == Sparsify::Random) {
      d = dare_drop(d, density, static_cast<uint64_t>(P.i("seed")), en, job.name, /*rescale=*/true);
    }
    dense[j] = d.contiguous();
  }

  torch::Tensor combined;
  if (s.consensus) {
    std::vector<kernels::DeltaRef> refs;
    for (size_t j = 0; j < experts.size(); ++j) {
      kernels::DeltaRef r;
      r.weight = w[j];
      if (dense[j].defined())
        r.dense = dense[j];
      else
        r.packed = &job.deltas[experts[j]].packed;
      refs.push_back(r);
    }
    kernels::CombineOptions o;
    o.sign_consensus = true;
    o.disjoint_mean = s.normalize;
    if (refs.empty()) {
      combined = torch::zeros(shape, base.options());
    } else {
      combined = kernels::ties_combine(refs, shape, o);
    }
  } else {
    combined = torch::zeros(shape, base.options().dtype(torch::kFloat32));
    double wsum = 0;
    for (size_t j = 0; j < experts.size(); ++j) {
      wsum += w[j];
      if (dense[j].defined())
        combined.add_(dense[j], w[j]);
      else
        kernels::add_packed_(combined, job.deltas[experts[j]].packed, w[j]);
    }
    if (s.normalize && std::abs(wsum) >= 1e-8) combined.div_(wsum);
  }
  auto out = base.clone();
  if (full_rows)
    out.add_(combined.reshape(base.sizes()), lambda);
  else
    out.narrow(0, 0, rows).add_(combined, lambda);
  return out;
}

torch::Tensor general_merge(const TensorJob& job, const GeneralSettings& s) {
  std::vector<int> all(job.deltas.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return general_merge(job, s, job.base, all);
}

}  // namespace bm::merging
