#include "harness/report/paired.hpp"

#include <cstdio>
#include <map>

namespace bm::report {

std::optional<Aligned> align_items(const Row& a, const Row& b, const std::string& bench, std::string* why) {
  auto say = [&](const std::string& s) -> std::optional<Aligned> {
    if (why) *why = s;
    return std::nullopt;
  };
  auto da = a.detail.find(bench), db = b.detail.find(bench);
  if (da == a.detail.end()) return say(a.name + " has no finished " + bench + " cell");
  if (db == b.detail.end()) return say(b.name + " has no finished " + bench + " cell");
  if (!da->second.has_items()) return say(a.name + " x " + bench + " has no per-item scores (rerun `bitmerge run`)");
  if (!db->second.has_items()) return say(b.name + " x " + bench + " has no per-item scores (rerun `bitmerge run`)");
  if (da->second.metric != db->second.metric)
    return say(bench + ": metrics differ (" + da->second.metric + " vs " + db->second.metric + ")");
  std::map<std::string, double> bm;
  for (size_t i = 0; i < db->second.ids.size(); ++i) bm[db->second.ids[i]] = db->second.items[i];
  if (bm.size() != da->second.ids.size())
    return say(bench + ": the two cells were scored on different items (" + std::to_string(da->second.ids.size()) +
               " vs " + std::to_string(bm.size()) + ")");
  Aligned al;
  for (size_t i = 0; i < da->second.ids.size(); ++i) {
    auto it = bm.find(da->second.ids[i]);
    if (it == bm.end()) return say(bench + ": item '" + da->second.ids[i] + "' was scored for " + a.name + " only");
    al.a.push_back(da->second.items[i]);
    al.b.push_back(it->second);
  }
  return al;
}

namespace {
bool collect(const Row& a, const Row& b, const std::vector<std::string>& benches, std::vector<std::vector<double>>& xa,
             std::vector<std::vector<double>>& xb, std::string* why) {
  for (auto& x : benches) {
    auto al = align_items(a, b, x, why);
    if (!al) return false;
    xa.push_back(std::move(al->a));
    xb.push_back(std::move(al->b));
  }
  return true;
}
}  // namespace

std::optional<stats::PairedResult> paired_test(const Row& a, const Row& b, const std::string& bench,
                                               const std::vector<std::string>& benchmarks,
                                               const stats::PairedOptions& o, std::string* why) {
  std::vector<std::vector<double>> xa, xb;
  if (!collect(a, b, bench == "average" ? benchmarks : std::vector<std::string>{bench}, xa, xb, why)) return std::nullopt;
  if (bench == "average") return stats::paired_compare_average(xa, xb, o);
  return stats::paired_compare(xa[0], xb[0], o);
}

std::optional<stats::RatioResult> paired_ratio(const Row& a, const Row& b, const std::vector<std::string>& benchmarks,
                                               const stats::PairedOptions& o, std::string* why) {
  std::vector<std::vector<double>> xa, xb;
  if (!collect(a, b, benchmarks, xa, xb, why)) return std::nullopt;
  double sb = 0;
  for (auto& x : xb) sb += stats::mean(x);
  if (sb == 0) {
    if (why) *why = b.name + " scores 0 on every item";
    return std::nullopt;
  }
  return stats::paired_ratio_average(xa, xb, o);
}

std::optional<stats::RatioResult> paired_gain_kept(const Row& a, const Row& b, const Row& base,
                                                   const std::vector<std::string>& benchmarks,
                                                   const stats::PairedOptions& o, std::string* why) {
  std::vector<std::vector<double>> xa, xb, xa2, x0;
  if (!collect(a, b, benchmarks, xa, xb, why) || !collect(a, base, benchmarks, xa2, x0, why)) return std::nullopt;
  double gb = 0;
  for (size_t k = 0; k < xb.size(); ++k) gb += stats::mean(xb[k]) - stats::mean(x0[k]);
  if (gb == 0) {
    if (why) *why = b.name + " scores the same as " + base.name + " here: no gain to keep";
    return std::nullopt;
  }
  return stats::paired_gain_kept_average(xa, xb, x0, o);  // xa and x0 both in a's item order
}

std::string format_p(double p) {
  char buf[48];
  if (p < 1e-10) return "p < 1e-10";
  if (p < 1e-3) std::snprintf(buf, sizeof buf, "p = %.1e", p);
  else std::snprintf(buf, sizeof buf, "p = %.4f", p);
  return buf;
}

std::string format_points(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", x);
  return b;
}
std::string format_signed_points(double x) { return (x >= 0 ? "+" : "") + format_points(x); }

}  // namespace bm::report
