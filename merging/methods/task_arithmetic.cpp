// task_arithmetic: theta = base + lambda * sum_k w_k delta_k (no sparsify, no consensus).
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_task_arithmetic() {
  MethodInfo m;
  m.name = "task_arithmetic";
  m.summary = "base + lambda * sum of weighted task vectors";
  m.params = {param_weight(), param_lambda(1.0)};
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::None, false, false}); };
  return m;
}
}  // namespace bm::merging
