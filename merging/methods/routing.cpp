// routing: the expert chosen by --route, whole (the paper's upper bound).
// An uncompressed checkpoint expert is copied verbatim (api.cpp); a compressed
// one is materialised as base + its (1-bit) task vector.
#include "merging/general.hpp"

namespace bm::merging {
MethodInfo method_routing() {
  MethodInfo m = method_info("routing");  // name, summary, kind (needs --route): merging/vocab.cpp
  m.merge = [](const TensorJob& j) {
    auto out = j.base.clone();
    const Delta& d = j.deltas[j.route];
    if (d.is_packed) {
      kernels::add_packed_(out, d.packed, 1.0);
    } else if (out.dim() > 0 && d.dense.dim() > 0 && d.dense.size(0) != out.size(0)) {
      out.narrow(0, 0, d.dense.size(0)).add_(d.dense);
    } else {
      out.add_(d.dense.reshape(out.sizes()));
    }
    return out;
  };
  return m;
}
}  // namespace bm::merging
