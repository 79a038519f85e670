// della / della_linear (DELLA-Merging, arXiv 2406.11617, as mergekit's della /
// della_linear): MagPrune drops each delta entry with a probability that falls
// with its |delta| rank in the row (keep p from density - epsilon for the
// smallest to density + epsilon for the largest), rescales the kept entries to
// the task vector's L1 norm (mergekit's rescale, default on), then
//   della:        TIES sign election + disjoint mean (mergekit normalize=true)
//   della_linear: weighted sum (normalize=false).
// The masks come from the seeded generator of DARE (seed, expert, tensor):
// reproducible, but not mergekit's torch.bernoulli bits.
#include <string>

#include "harness/core/error.hpp"
#include "merging/general.hpp"

namespace bm::merging {
namespace {
void check_epsilon(const Params& P, const std::vector<std::string>& experts) {
  std::vector<std::string> who{""};
  who.insert(who.end(), experts.begin(), experts.end());
  for (auto& e : who) {
    double d = P.f("density", e), eps = P.f("epsilon", e);
    if (d > 0.0 && d < 1.0 && (d + eps >= 1.0 || d - eps <= 0.0))
      fail("--param " + (e.empty() ? std::string() : e + ".") + "epsilon",
           "density " + std::to_string(d) + " -+ epsilon " + std::to_string(eps) +
               " leaves (0, 1); choose epsilon < min(density, 1 - density)");
  }
}
MethodInfo della_method(const std::string& name, bool consensus) {
  MethodInfo m = method_info(name);  // name, summary, parameters: merging/vocab.cpp
  m.whole_tensor = true;
  m.validate = check_epsilon;
  m.merge = [consensus](const TensorJob& j) { return general_merge(j, {Sparsify::Della, consensus, consensus}); };
  return m;
}
}  // namespace
MethodInfo method_della() { return della_method("della", true); }
MethodInfo method_della_linear() { return della_method("della_linear", false); }
}  // namespace bm::merging
