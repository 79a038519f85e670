// dare_ties: DARE drop + rescale, then TIES sign election (no disjoint mean,
// as mergekit's default normalize=false for dare_ties).
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_dare_ties() {
  MethodInfo m = method_info("dare_ties");  // name, summary, parameters: merging/vocab.cpp
  m.random_drop = true;
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Random, true, false}); };
  return m;
}
}  // namespace bm::merging
