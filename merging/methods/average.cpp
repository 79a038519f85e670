// average: theta = sum_k w_k theta_k / sum_k w_k  (mergekit "linear");
// equivalently base + the weighted mean of the task vectors.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_average() {
  MethodInfo m;
  m.name = "average";
  m.summary = "weighted average of the experts (mergekit linear)";
  m.params = {param_weight(), param_lambda(1.0)};
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::None, false, /*normalize=*/true}); };
  return m;
}
}  // namespace bm::merging
