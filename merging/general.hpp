// The generalized task-arithmetic routine (as mergekit's
// GeneralizedTaskArithmeticMerge): sparsify x sign consensus x normalize/rescale.
//   1. sparsify each delta_k: none | magnitude (TIES: keep the top
//      density*numel by |delta|, per tensor or global over the model) |
//      random (DARE: keep with probability density, seeded; rescale 1/density)
//   2. weight: w_k * delta_k
//   3. sign consensus (optional): majority sign = sign(sum_k w_k delta_k), >= 0 -> +;
//      keep entries agreeing with it (zeros never count)
//   4. sum; normalize (optional): with consensus divide by the sum of the
//      weights kept at each entry (disjoint mean, 0 stays 0), without it by sum_k w_k
//   5. base + lambda * result
#pragma once
#include "merging/registry.hpp"

namespace bm::merging {

enum class Sparsify { None, Magnitude, Random };

struct GeneralSettings {
  Sparsify sparsify = Sparsify::None;
  bool consensus = false;
  bool normalize = false;
};

// Merges the experts listed in `experts` (indices into job.deltas) into `base`
// (fp32, job.base's shape). Reads params: lambda, weight, density, seed, trim.
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

// Per-tensor magnitude cut from |d| of a whole tensor (flat; a contiguous CPU
// fp32 tensor is reordered in place, no copy): same entries as trim_magnitude when applied in order.
TensorJob::TrimCut trim_cut(const torch::Tensor& abs_flat, double density);
// Applies a cut to the next rows of the tensor (consumes c.need).
torch::Tensor apply_trim_cut(const torch::Tensor& d, TensorJob::TrimCut& c);

}  // namespace bm::merging
