#include "merging/general.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "harness/core/error.hpp"
#include "kernels/select.hpp"

namespace bm::merging {

torch::Tensor trim_magnitude(const torch::Tensor& d, double density) {
  if (density >= 1.0) return d;
  int64_t n = d.numel();
  if (density <= 0.0 || n == 0) return torch::zeros_like(d);
  // As mergekit: at least one entry survives a positive density.
  auto k = std::max<int64_t>(1, static_cast<int64_t>(density * static_cast<double>(n)));
  auto flat = d.reshape({-1});
  auto a = flat.abs();
  // k-th largest |d| by selection; entries equal to it are added in index
  // order until exactly k are kept. On CUDA the radix select of
  // kernels/select.hpp (torch's kthvalue runs one block per slice there).
  float thr;
  int64_t need;
  if (a.is_cuda()) {
    auto cut = kernels::kth_largest_abs(a, k);
    thr = cut.thr;
    need = k - cut.greater;
  } else {
    thr = std::get<0>(torch::kthvalue(a, n - k + 1)).item<float>();
    need = -1;
  }
  auto mask = a > thr;
  if (need < 0) need = k - mask.sum().item<int64_t>();
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

// DARE's keep mask (bool, CPU): entry i is kept when the generator's i-th uniform
// draw is below density. The mask is drawn on the CPU so CPU and CUDA merges are
// bit-identical. CPU uniform_ draws serially in index order, so drawing a tensor's
// rows in chunks from one generator gives the same mask as drawing it whole.
static torch::Tensor dare_keep_mask(at::IntArrayRef sizes, at::Generator gen, double density) {
  return torch::rand(sizes, gen, torch::TensorOptions().dtype(torch::kFloat32)) < density;
}

// d with the dropped entries zeroed, the kept ones rescaled by 1/density when rescale.
static torch::Tensor dare_apply_mask(const torch::Tensor& d, const torch::Tensor& keep, double density, bool rescale) {
  auto out = d * keep.to(d.device());
  if (rescale) out = out / density;
  return out;
}

static torch::Tensor dare_drop_gen(const torch::Tensor& d, double density, at::Generator gen, bool rescale) {
  if (density >= 1.0) return d;
  if (density <= 0.0) return torch::zeros_like(d);
  return dare_apply_mask(d, dare_keep_mask(d.sizes(), gen, density), density, rescale);
}

torch::Tensor dare_drop(const torch::Tensor& d, double density, uint64_t seed, const std::string& expert,
                        const std::string& tensor, bool rescale) {
  if (density >= 1.0) return d;
  if (density <= 0.0) return torch::zeros_like(d);
  return dare_drop_gen(d, density, at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, expert, tensor)), rescale);
}

struct DropMaskPool::Entry {
  std::vector<int64_t> sizes;
  double density = 0;
  uint64_t seed = 0;
  std::future<torch::Tensor> mask;
};

static std::string pool_key(const std::string& expert, const std::string& tensor) {
  return expert + std::string(1, '\0') + tensor;
}

DropMaskPool::~DropMaskPool() {
  std::lock_guard<std::mutex> g(m_);
  for (auto& [k, e] : pending_)
    if (e->mask.valid()) e->mask.wait();
}

void DropMaskPool::request(const std::string& expert, const std::string& tensor, const std::vector<int64_t>& sizes,
                           double density, uint64_t seed) {
  std::lock_guard<std::mutex> g(m_);
  auto key = pool_key(expert, tensor);
  if (pending_.count(key)) return;
  auto e = std::make_shared<Entry>();
  e->sizes = sizes;
  e->density = density;
  e->seed = seed;
  uint64_t s = mix_seed(seed, expert, tensor);
  e->mask = std::async(std::launch::async, [sizes, density, s] {
    at::NoGradGuard ng;
    return dare_keep_mask(sizes, at::make_generator<at::CPUGeneratorImpl>(s), density);
  });
  pending_[key] = std::move(e);
}

torch::Tensor DropMaskPool::take(const std::string& expert, const std::string& tensor, at::IntArrayRef sizes,
                                 double density, uint64_t seed) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> g(m_);
    auto it = pending_.find(pool_key(expert, tensor));
    if (it == pending_.end()) return torch::Tensor();
    e = it->second;
    pending_.erase(it);
  }
  auto mask = e->mask.get();  // rethrows a failed draw
  if (sizes.vec() != e->sizes || density != e->density || seed != e->seed) return torch::Tensor();
  std::lock_guard<std::mutex> g(m_);
  ++served_;
  return mask;
}

int64_t DropMaskPool::served() const {
  std::lock_guard<std::mutex> g(m_);
  return served_;
}

size_t DropMaskPool::pending() const {
  std::lock_guard<std::mutex> g(m_);
  return pending_.size();
}

torch::Tensor seeded_draws(const torch::Tensor& d, uint64_t seed, const std::string& expert, const std::string& tensor) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, expert, tensor));
  return torch::rand(d.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
}

torch::Tensor rescale_l1(const torch::Tensor& d, const torch::Tensor& masked) {
  auto before = d.abs().sum(), after = masked.abs().sum();
  if (before.item<float>() < 1e-7f || after.item<float>() < 1e-7f) return masked;
  return masked * (before / after);
}

torch::Tensor della_probs(const torch::Tensor& d, double density, double epsilon) {
  // As mergekit: rows of a 2-D tensor, one row for 1-D; ranks in fp32.
  auto t = d.dim() < 2 ? d.reshape({1, -1}) : d;
  auto a = t.abs();
  int64_t m = a.size(1);
  if (m <= 1) return torch::full(d.sizes(), density, torch::TensorOptions().dtype(torch::kFloat32).device(d.device()));
  auto order = std::get<1>(a.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false));
  auto ranks = order.argsort(/*stable=*/true, /*dim=*/1).to(torch::kFloat32) + 1;
  auto lo = std::get<0>(ranks.min(1, true)), hi = std::get<0>(ranks.max(1, true));
  auto rank_norm = ((ranks - lo) / (hi - lo)).clamp(0, 1);
  auto probs = rank_norm * 2 * epsilon + (density - epsilon);
  return probs.reshape(d.sizes());
}

torch::Tensor della_magprune(const torch::Tensor& d, double density, double epsilon, const torch::Tensor& draws,
                             bool rescale) {
  if (density >= 1.0) return d;
  if (density <= 0.0) return torch::zeros_like(d);
  auto keep = draws.to(d.device()) < della_probs(d, density, epsilon);
  auto masked = d * keep;
  return rescale ? rescale_l1(d, masked) : masked;
}

torch::Tensor magnitude_outliers(const torch::Tensor& d, double density, double gamma, bool rescale) {
  if (density >= 1.0) return d;
  int64_t n = d.numel();
  auto target = static_cast<int64_t>(density * static_cast<double>(n));
  auto top = static_cast<int64_t>(gamma * static_cast<double>(n));
  int64_t bot = std::max<int64_t>(0, n - target - top);  // fewer outliers dropped when density needs them
  auto flat = d.reshape({-1});
  auto order = std::get<1>(flat.abs().sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  auto mask = torch::zeros({n}, flat.options().dtype(torch::kBool));
  if (target > 0) mask.index_fill_(0, order.narrow(0, bot, target), true);
  auto masked = (flat * mask).reshape(d.sizes());
  return rescale ? rescale_l1(d, masked) : masked;
}

TensorJob::TrimCut trim_cut(const torch::Tensor& abs_flat, double density) {
  TensorJob::TrimCut c;
  int64_t n = abs_flat.numel();
  if (density >= 1.0) return c;
  c.active = true;
  if (density <= 0.0 || n == 0) {
    c.thr = std::numeric_limits<float>::infinity();
    return c;
  }
  auto k = std::max<int64_t>(1, static_cast<int64_t>(density * static_cast<double>(n)));
  auto a = abs_flat.to(torch::kCPU).to(torch::kFloat32).contiguous();  // reordered in place when already so
  float* p = a.data_ptr<float>();
  // The (n-k+1)-th smallest (as kthvalue), in place: no index tensor.
  int64_t pos = n - k;
  std::nth_element(p, p + pos, p + n);
  c.thr = p[pos];
  int64_t gt = 0;  // everything before pos is <= thr
  for (int64_t i = pos + 1; i < n; ++i) gt += p[i] > c.thr;
  c.need = k - gt;
  return c;
}

torch::Tensor apply_trim_cut(const torch::Tensor& d, TensorJob::TrimCut& c) {
  if (!c.active) return d;
  if (std::isinf(c.thr)) return torch::zeros_like(d);
  auto flat = d.reshape({-1});
  auto a = flat.abs();
  auto mask = a > c.thr;
  if (c.need > 0) {
    auto eq = torch::nonzero(a == c.thr).reshape({-1});
    int64_t take = std::min<int64_t>(c.need, eq.numel());
    if (take > 0) mask.index_fill_(0, eq.narrow(0, 0, take), true);
    c.need -= take;
  }
  return (flat * mask).reshape(d.sizes());
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
      } else if (job.tensor_cuts) {
        d = apply_trim_cut(d, (*job.tensor_cuts)[k]);
      } else {
        d = trim_magnitude(d, density);
      }
    } else if (s.sparsify == Sparsify::Della) {
      // Whole tensors only (MethodInfo::whole_tensor): the L1 rescale spans the tensor.
      bool rescale = !P.has("rescale") || P.b("rescale");
      if (density > 0.0 && density < 1.0)
        d = della_magprune(d, density, P.f("epsilon", en), seeded_draws(d, static_cast<uint64_t>(P.i("seed")), en, job.name),
                           rescale);
      else
        d = della_magprune(d, density, 0.0, torch::Tensor(), rescale);
    } else if (s.sparsify == Sparsify::Outliers) {
      d = magnitude_outliers(d, density, P.f("gamma", en), P.has("rescale") && P.b("rescale"));
    } else if (s.sparsify == Sparsify::Random) {
      if (job.dare_gens && density > 0.0 && density < 1.0) {
        auto& g = (*job.dare_gens)[k];
        if (!g.defined())
          g = at::make_generator<at::CPUGeneratorImpl>(mix_seed(static_cast<uint64_t>(P.i("seed")), en, job.name));
        d = dare_drop_gen(d, density, g, /*rescale=*/true);
      } else {
        auto seed = static_cast<uint64_t>(P.i("seed"));
        torch::Tensor keep;
        if (job.drop_masks && density > 0.0 && density < 1.0)
          keep = job.drop_masks->take(en, job.name, d.sizes(), density, seed);
        if (keep.defined())
          d = dare_apply_mask(d, keep, density, /*rescale=*/true);
        else
          d = dare_drop(d, density, seed, en, job.name, /*rescale=*/true);
      }
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
