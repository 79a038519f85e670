// task_arithmetic: theta = base + lambda * sum_k w_k delta_k (no sparsify, no consensus).
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_task_arithmetic() {
  MethodInfo m = method_info("task_arithmetic");  // name, summary, parameters: merging/vocab.cpp
  m.merge = [](const TensorJob& j) { return general_merge(j, {Sparsify::None, false, false}); };
  return m;
}
}  // namespace bm::merging
