// dare (dare_linear): drop each delta entry with p = 1 - density, rescale the
// kept ones by 1/(1-p) (the paper's rule), seeded; then task arithmetic.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_dare() {
  MethodInfo m;
  m.name = "dare";
  m.summary = "DARE: random drop p = 1 - density, rescale 1/(1-p), task arithmetic";
  m.params = {param_weight(), param_density(0.5), param_lambda(1.0), param_seed()};
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Random, false, false}); };
  return m;
}
}  // namespace bm::merging
