// ties: magnitude trim (density; per tensor as mergekit or global as MergeLM),
// sign election, disjoint mean, lambda.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_ties() {
  MethodInfo m;
  m.name = "ties";
  m.summary = "TIES-Merging: trim, elect sign, disjoint mean";
  m.params = {param_weight(), param_density(0.5), param_lambda(1.0), param_trim()};
  m.magnitude_trim = true;
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Magnitude, true, true}); };
  return m;
}
}  // namespace bm::merging
