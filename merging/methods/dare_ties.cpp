// dare_ties: DARE drop + rescale, then TIES sign election (no disjoint mean,
// as mergekit's default normalize=false for dare_ties).
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_dare_ties() {
  MethodInfo m;
  m.name = "dare_ties";
  m.summary = "DARE drop/rescale + TIES sign election";
  m.params = {param_weight(), param_density(0.5), param_lambda(1.0), param_seed()};
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Random, true, false}); };
  return m;
}
}  // namespace bm::merging
