// breadcrumbs / breadcrumbs_ties (Model Breadcrumbs, arXiv 2312.06795, as
// mergekit's breadcrumbs / breadcrumbs_ties): per tensor, drop the gamma
// fraction of largest |delta| (outliers) and the smallest, keeping
// int(density * numel) entries; optional L1 rescale (mergekit default off); then
//   breadcrumbs:      weighted sum
//   breadcrumbs_ties: TIES sign election, summed (mergekit normalize=false).
// Deterministic.
#include "merging/general.hpp"

namespace bm::merging {
namespace {
MethodInfo breadcrumbs_method(const std::string& name, bool consensus) {
  MethodInfo m = method_info(name);  // name, summary, parameters: merging/vocab.cpp
  m.whole_tensor = true;
  m.merge = [consensus](const TensorJob& j) { return general_merge(j, {Sparsify::Outliers, consensus, false}); };
  return m;
}
}  // namespace
MethodInfo method_breadcrumbs() { return breadcrumbs_method("breadcrumbs", false); }
MethodInfo method_breadcrumbs_ties() { return breadcrumbs_method("breadcrumbs_ties", true); }
}  // namespace bm::merging
