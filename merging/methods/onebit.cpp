// onebit (1bit-Merging): theta = theta_pre + C(delta_k*) + lambda * TIES(C(delta_j), j != k*),
// k* = --route (the router's argmax). C = 1-bit compression at each expert's
// position (paper: chat=mlp, math=attention, code=attention; api.cpp fills it
// in when --compress is not given). The packed deltas go to the kernels as is
// (ties_combine on bits), so density defaults to 1 (no trim: every entry of a
// 1-bit matrix has the same magnitude).
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_onebit() {
  MethodInfo m = method_info("onebit");  // name, summary, kind (needs --route), parameters: merging/vocab.cpp
  m.magnitude_trim = true;
  m.merge = [](const TensorJob& j) {
    auto with_route = j.base.clone();
    const Delta& d = j.deltas[j.route];
    if (d.is_packed) {
      kernels::add_packed_(with_route, d.packed, 1.0);
    } else if (with_route.dim() > 0 && d.dense.dim() > 0 && d.dense.size(0) != with_route.size(0)) {
      with_route.narrow(0, 0, d.dense.size(0)).add_(d.dense);
    } else {
      with_route.add_(d.dense.reshape(with_route.sizes()));
    }
    std::vector<int> others;
    for (int k = 0; k < static_cast<int>(j.deltas.size()); ++k)
      if (k != j.route) others.push_back(k);
    if (others.empty()) return with_route;
    return general_merge(j, {Sparsify::Magnitude, true, true}, with_route, others);
  };
  return m;
}
}  // namespace bm::merging
