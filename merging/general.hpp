// The generalized task-arithmetic routine (as mergekit's
// GeneralizedTaskArithmeticMerge): sparsify x sign consensus x normalize/rescale.
//   1. sparsify each delta_k: none | magnitude (TIES: keep the top
//      density*numel by |delta|, per tensor or global over the model) |
//      random (DARE: keep with probability density, seeded; rescale 1/density) |
//      della (DELLA's MagPrune: keep probability rising with the |delta| rank
//      in its row, seeded; L1 rescale) | outliers (Model Breadcrumbs: drop the
//      gamma largest and the smallest |delta|, keep density; optional L1 rescale)
//   2. weight: w_k * delta_k
//   3. sign consensus (optional): majority sign = sign(sum_k w_k delta_k), >= 0 -> +;
//      keep entries agreeing with it (zeros never count)
//   4. sum; normalize (optional): with consensus divide by the sum of the
//      weights kept at each entry (disjoint mean, 0 stays 0), without it by sum_k w_k
//   5. base + lambda * result
#pragma once
#include <future>
#include <map>
#include <memory>
#include <mutex>

#include "merging/registry.hpp"

namespace bm::merging {

enum class Sparsify { None, Magnitude, Random, Della, Outliers };

struct GeneralSettings {
  Sparsify sparsify = Sparsify::None;
  bool consensus = false;
  bool normalize = false;
};

// Merges the experts listed in `experts` (indices into job.deltas) into `base`
// (fp32, job.base's shape). Reads params: lambda, weight, density, seed, trim,
// and for della / outliers epsilon, gamma, rescale (when the method has them).
torch::Tensor general_merge(const TensorJob& job, const GeneralSettings& s, const torch::Tensor& base,
                            const std::vector<int>& experts);
// All experts, onto job.base.
torch::Tensor general_merge(const TensorJob& job, const GeneralSettings& s);

// Magnitude trim of one tensor: keeps exactly max(1, floor(density*numel)) entries, the largest |d| (as mergekit).
torch::Tensor trim_magnitude(const torch::Tensor& d, double density);
// DARE: keeps each entry with probability density (seeded by seed, expert, tensor),
// rescales kept entries by 1/density when rescale. Bit-identical for the same inputs.
torch::Tensor dare_drop(const torch::Tensor& d, double density, uint64_t seed, const std::string& expert,
                        const std::string& tensor, bool rescale = true);

// DARE's keep masks drawn ahead of their use, side by side on worker threads.
// One mask is the CPU generator seeded by (seed, expert, tensor) drawn serially,
// (draws < density), exactly as dare_drop draws it; masks of different experts
// and tensors come from different generators, so drawing several at once gives
// the same bits. A 7B-shaped DARE merge spends most of its time in these serial
// draws (3 experts x 6.7 B), whichever device does the math.
class DropMaskPool {
 public:
  DropMaskPool() = default;
  DropMaskPool(const DropMaskPool&) = delete;
  DropMaskPool& operator=(const DropMaskPool&) = delete;
  ~DropMaskPool();  // waits for the draws still running
  // Starts drawing the mask of (expert, tensor) on its own thread unless it is already there.
  void request(const std::string& expert, const std::string& tensor, const std::vector<int64_t>& sizes,
               double density, uint64_t seed);
  // The mask (bool, CPU) when one was requested with these sizes, density and seed (waits
  // for it); else an undefined tensor (the caller draws it itself). Either way it is forgotten.
  torch::Tensor take(const std::string& expert, const std::string& tensor, at::IntArrayRef sizes, double density,
                     uint64_t seed);
  int64_t served() const;   // masks handed out by take()
  size_t pending() const;   // requested, not yet taken

 private:
  struct Entry;
  mutable std::mutex m_;
  std::map<std::string, std::shared_ptr<Entry>> pending_;
  int64_t served_ = 0;
};

// The uniform [0,1) draws (CPU, fp32, d's shape) of the generator seeded by
// (seed, expert, tensor): DARE's and DELLA's masks keep entry i when draw_i < p_i.
torch::Tensor seeded_draws(const torch::Tensor& d, uint64_t seed, const std::string& expert, const std::string& tensor);

// mergekit's rescaled_masked_tensor with norm l1: masked * (sum|d| / sum|masked|),
// masked unchanged when either sum is below 1e-7.
torch::Tensor rescale_l1(const torch::Tensor& d, const torch::Tensor& masked);

// DELLA MagPrune keep probabilities (mergekit della_magprune): per row of d
// (1-D: the whole vector) p = (density - epsilon) + 2 * epsilon * (rank - 1) / (m - 1),
// rank 1..m of |d| in the row (ascending, stable); a row of one entry gets p = density.
torch::Tensor della_probs(const torch::Tensor& d, double density, double epsilon);
// DELLA MagPrune given the draws: keep where draws < p, then rescale_l1 when rescale.
// density >= 1 returns d; density <= 0 zeros (as mergekit).
torch::Tensor della_magprune(const torch::Tensor& d, double density, double epsilon, const torch::Tensor& draws,
                             bool rescale);
// Model Breadcrumbs (mergekit magnitude_outliers): of the n entries sorted by |d|
// (ascending, stable), keep int(density*n) of them after dropping the
// min(int(gamma*n), n - int(density*n)) largest; rescale_l1 when rescale.
// density >= 1 returns d.
torch::Tensor magnitude_outliers(const torch::Tensor& d, double density, double gamma, bool rescale);

// Per-tensor magnitude cut from |d| of a whole tensor (flat; a contiguous CPU
// fp32 tensor is reordered in place, no copy): same entries as trim_magnitude when applied in order.
TensorJob::TrimCut trim_cut(const torch::Tensor& abs_flat, double density);
// Applies a cut to the next rows of the tensor (consumes c.need).
torch::Tensor apply_trim_cut(const torch::Tensor& d, TensorJob::TrimCut& c);

}  // namespace bm::merging
