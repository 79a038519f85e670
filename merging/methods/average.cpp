// average: theta = sum_k w_k theta_k / sum_k w_k  (mergekit "linear");
// equivalently base + the weighted mean of the task vectors.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_average() {
  MethodInfo m = method_info("average");  // name, summary, parameters: merging/vocab.cpp
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::None, false, /*normalize=*/true}); };
  return m;
}
}  // namespace bm::merging
