// dare (dare_linear): drop each delta entry with p = 1 - density, rescale the
// kept ones by 1/(1-p) (the paper's rule), seeded; then task arithmetic.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_dare() {
  MethodInfo m = method_info("dare");  // name (alias dare_linear), summary, parameters: merging/vocab.cpp
  m.random_drop = true;
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::Random, false, false}); };
  return m;
}
}  // namespace bm::merging
