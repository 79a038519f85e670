// ties: magnitude trim (density; per tensor as mergekit or global as MergeLM),
// sign election, disjoint mean, lambda.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_ties() {
  MethodInfo m = method_info("ties");  // name, summary, parameters: merging/vocab.cpp
  m.magnitude_trim = true;
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Magnitude, true, true}); };
  return m;
}
}  // namespace bm::merging
