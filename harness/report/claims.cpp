#include "harness/report/claims.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/report/paired.hpp"
#include "harness/report/tables.hpp"

namespace bm::report {
namespace {

std::string f2(double x) { return format_points(x); }
std::string sgn(double x) { return format_signed_points(x); }

[[noreturn]] void key_fail(const std::string& file, const std::string& key, const std::string& what) {
  bm::fail(file + ": " + key, what);
}

std::string str_of(const toml::table& t, const std::string& k, const std::string& file, const std::string& pre,
                   const std::string& dflt, bool required = false) {
  auto* n = t.get(k);
  if (!n) {
    if (required) key_fail(file, pre + k, "missing; every claim check needs it (see docs/statistics.md)");
    return dflt;
  }
  if (!n->is_string()) key_fail(file, pre + k, "must be a string");
  return std::string(*n->value<std::string>());
}

std::optional<double> num_of(const toml::table& t, const std::string& k, const std::string& file,
                             const std::string& pre) {
  auto* n = t.get(k);
  if (!n) return std::nullopt;
  if (auto d = n->value<double>()) return *d;
  key_fail(file, pre + k, "must be a number");
}

void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& file,
                const std::string& pre) {
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string all;
      for (auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
      key_fail(file, pre + key, "unknown key" + bm::did_you_mean(key, allowed) + "; valid keys here: " + all);
    }
  }
}

double normal_quantile(double p) {  // inverse of the standard normal CDF, by bisection
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

std::string verdict_of(const ClaimCheck& c, double lo, double hi) {
  if (c.op == ">") return lo > c.value ? kHolds : hi <= c.value ? kFails : kInconclusive;
  if (c.op == "<") return hi < c.value ? kHolds : lo >= c.value ? kFails : kInconclusive;
  double a = c.value - c.margin, b = c.value + c.margin;
  if (lo >= a && hi <= b) return kHolds;
  if (hi < a || lo > b) return kFails;
  return kInconclusive;
}

std::optional<double> score(const std::vector<std::string>& avg_over, const Row& r, const std::string& b) {
  if (b == "average") return r.measured_average(avg_over);
  auto it = r.measured.find(b);
  if (it == r.measured.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::string ClaimCheck::describe() const {
  std::string bl;
  for (auto& x : benchmarks) bl += (bl.empty() ? "" : "+") + benchmark_label(x);
  if (bl.empty()) bl = benchmark_label(benchmark);
  std::string lhs;
  if (stat == "diff") lhs = a + " − " + b + " (" + bl + ", points)";
  else if (stat == "ratio") lhs = a + " as % of " + b + " (" + bl + ")";
  else if (stat == "storage_ratio") lhs = a + "'s storage as % of " + b + "'s";
  else if (stat == "gain_kept") lhs = "% of " + b + "'s gain over " + base + " kept by " + a + " (" + bl + ")";
  else lhs = a + " (" + bl + ")";
  if (op == "within") return lhs + " within " + f2(value) + " ± " + f2(margin);
  return lhs + " " + op + " " + f2(value);
}

std::vector<Claim> parse_claims_text(const std::string& text, const std::string& file) {
  toml::table t;
  try {
    t = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << file << ":" << e.source().begin.line << ": TOML parse error: " << e.description() << "; fix the syntax";
    throw bm::Error(os.str());
  }
  std::vector<Claim> out;
  auto* cs = t.get("claims");
  if (!cs) return out;
  if (!cs->is_array()) key_fail(file, "claims", "must be an array of tables ([[claims]])");
  size_t i = 0;
  for (auto&& n : *cs->as_array()) {
    std::string pre = "claims[" + std::to_string(i++) + "].";
    auto* ct = n.as_table();
    if (!ct) key_fail(file, pre.substr(0, pre.size() - 1), "must be a table ([[claims]])");
    check_keys(*ct, {"id", "text", "source", "require", "checks"}, file, pre);
    Claim c;
    c.id = str_of(*ct, "id", file, pre, "", true);
    c.text = str_of(*ct, "text", file, pre, "", true);
    c.source = str_of(*ct, "source", file, pre, "");
    c.require = str_of(*ct, "require", file, pre, "all");
    if (c.require != "all" && c.require != "any") key_fail(file, pre + "require", "'" + c.require + "' is not all or any");
    auto* ch = ct->get("checks");
    if (!ch || !ch->is_array() || ch->as_array()->empty())
      key_fail(file, pre + "checks", "missing or empty; give a list of { a, b, op, value } checks");
    size_t k = 0;
    for (auto&& cn : *ch->as_array()) {
      std::string cp = pre + "checks[" + std::to_string(k++) + "].";
      auto* kt = cn.as_table();
      if (!kt) key_fail(file, cp.substr(0, cp.size() - 1), "must be an inline table { a = ..., op = ... }");
      check_keys(*kt, {"stat", "a", "b", "base", "benchmark", "op", "value", "margin", "paper"}, file, cp);
      ClaimCheck base;
      base.stat = str_of(*kt, "stat", file, cp, "diff");
      const std::vector<std::string> stats = {"diff", "ratio", "storage_ratio", "value", "gain_kept"};
      if (std::find(stats.begin(), stats.end(), base.stat) == stats.end())
        key_fail(file, cp + "stat", "'" + base.stat + "' is not diff, ratio, storage_ratio, value or gain_kept" +
                                        bm::did_you_mean(base.stat, stats));
      base.a = str_of(*kt, "a", file, cp, "", true);
      base.base = str_of(*kt, "base", file, cp, "");
      if (base.stat == "gain_kept" && base.base.empty())
        key_fail(file, cp + "base", "missing; stat 'gain_kept' measures both gains from this variant (e.g. \"Base\")");
      if (base.stat != "gain_kept" && !base.base.empty())
        key_fail(file, cp + "base", "is for stat 'gain_kept' only; remove it or set stat = \"gain_kept\"");
      if (auto* bn = kt->get("benchmark"); bn && bn->is_array()) {
        for (auto&& x : *bn->as_array()) {
          if (!x.is_string()) key_fail(file, cp + "benchmark", "must be a benchmark name or a list of names");
          base.benchmarks.push_back(std::string(*x.value<std::string>()));
        }
        if (base.benchmarks.empty()) key_fail(file, cp + "benchmark", "is an empty list; name at least one benchmark");
        if (base.stat == "value" || base.stat == "storage_ratio")
          key_fail(file, cp + "benchmark", "a list of benchmarks is for diff, ratio and gain_kept; give one name");
      } else {
        base.benchmark = str_of(*kt, "benchmark", file, cp, "average");
      }
      base.op = str_of(*kt, "op", file, cp, ">");
      if (base.op != ">" && base.op != "<" && base.op != "within")
        key_fail(file, cp + "op", "'" + base.op + "' is not >, < or within");
      base.value = num_of(*kt, "value", file, cp).value_or(0);
      base.margin = num_of(*kt, "margin", file, cp).value_or(0);
      if (base.op == "within" && !(base.margin > 0)) key_fail(file, cp + "margin", "op = \"within\" needs a margin > 0");
      base.paper = num_of(*kt, "paper", file, cp);
      std::vector<std::string> bs;
      if (auto* bn = kt->get("b")) {
        if (bn->is_string()) bs.push_back(std::string(*bn->value<std::string>()));
        else if (auto* arr = bn->as_array()) {
          for (auto&& x : *arr) {
            if (!x.is_string()) key_fail(file, cp + "b", "must be a variant name or a list of names");
            bs.push_back(std::string(*x.value<std::string>()));
          }
        } else {
          key_fail(file, cp + "b", "must be a variant name or a list of names");
        }
      }
      if (bs.empty() && base.stat != "value") key_fail(file, cp + "b", "missing; stat '" + base.stat + "' compares a with b");
      if (bs.empty()) bs.push_back("");
      for (auto& b : bs) {
        ClaimCheck x = base;
        x.b = b;
        c.checks.push_back(x);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Claim> load_claims(const std::string& path) { return parse_claims_text(bm::read_text_file(path), path); }

std::vector<ClaimOutcome> evaluate_claims(const std::vector<Claim>& claims, const ResultsView& v,
                                          const stats::PairedOptions& o) {
  std::vector<ClaimOutcome> out;
  double z = normal_quantile(0.5 + o.confidence / 2);
  for (auto& c : claims) {
    ClaimOutcome co;
    co.claim = c;
    for (auto& k : c.checks) {
      CheckOutcome r;
      r.check = k;
      const Row* a = v.row(k.a);
      const Row* b = k.b.empty() ? nullptr : v.row(k.b);
      const Row* b0 = k.base.empty() ? nullptr : v.row(k.base);
      // The benchmarks an average runs over: the check's own list, else the experiment's.
      const std::vector<std::string>& avg_over = k.benchmarks.empty() ? v.benchmarks : k.benchmarks;
      auto not_measured = [&](const std::string& why) {
        r.verdict = kNotMeasured;
        r.detail = why;
      };
      if (!a) not_measured("no variant '" + k.a + "' in " + v.name);
      else if (!k.b.empty() && !b) not_measured("no variant '" + k.b + "' in " + v.name);
      else if (!k.base.empty() && !b0) not_measured("no variant '" + k.base + "' in " + v.name);
      else if (k.stat == "gain_kept" || k.stat == "ratio") {
        // Over the check's one benchmark, else the average's benchmarks.
        auto over = k.benchmark == "average" ? avg_over : std::vector<std::string>{k.benchmark};
        std::string why;
        bool gain = k.stat == "gain_kept";
        auto x = gain ? paired_gain_kept(*a, *b, *b0, over, o, &why) : paired_ratio(*a, *b, over, o, &why);
        if (!x) not_measured(why);
        else {
          r.estimate = x->ratio;
          r.lo = x->lo;
          r.hi = x->hi;
          r.test = gain ? "paired bootstrap of the share of the gain" : "paired bootstrap of the ratio";
        }
      } else if (k.stat == "storage_ratio") {
        if (!a->storage_bytes || !b->storage_bytes || *b->storage_bytes <= 0) not_measured("no storage size recorded");
        else {
          double x = 100.0 * *a->storage_bytes / *b->storage_bytes;
          r.estimate = r.lo = r.hi = x;
          r.test = "exact (analytic storage count)";
        }
      } else if (k.stat == "value") {
        auto m = score(avg_over, *a, k.benchmark);
        auto se = a->measured_stderr(k.benchmark, avg_over);
        if (!m) not_measured(k.a + " has no complete " + benchmark_label(k.benchmark));
        else if (!se) not_measured(k.a + " has no standard error (no per-item scores)");
        else {
          r.estimate = *m;
          r.lo = *m - z * *se;
          r.hi = *m + z * *se;
          r.test = "score ± " + f2(z) + " standard errors";
        }
      } else {  // diff
        std::string why;
        auto pt = paired_test(*a, *b, k.benchmark, avg_over, o, &why);
        if (pt) {
          r.estimate = 100 * pt->diff;
          r.lo = 100 * pt->ci_lo;
          r.hi = 100 * pt->ci_hi;
          r.test = pt->test + ", " + format_p(pt->p);
          if (pt->test == "mcnemar-exact") r.mcnemar_p = pt->p;
          if (pt->test == "mcnemar-exact") r.test += "; interval: paired bootstrap";
        } else {
          auto ma = score(avg_over, *a, k.benchmark), mb = score(avg_over, *b, k.benchmark);
          auto sa = a->measured_stderr(k.benchmark, avg_over), sb = b->measured_stderr(k.benchmark, avg_over);
          if (ma && mb && sa && sb) {
            double se = std::sqrt(*sa * *sa + *sb * *sb);
            r.estimate = *ma - *mb;
            r.lo = *r.estimate - z * se;
            r.hi = *r.estimate + z * se;
            r.test = "unpaired normal interval (" + why + ")";
          } else {
            not_measured(why);
          }
        }
      }
      if (r.estimate) r.verdict = verdict_of(k, *r.lo, *r.hi);
      // A single binary benchmark against 0: the exact McNemar test must agree
      // (the percentile interval can exclude 0 on a handful of one-sided pairs).
      if (r.mcnemar_p && k.value == 0 && k.op != "within" && r.verdict != kInconclusive &&
          *r.mcnemar_p >= 1 - o.confidence)
        r.verdict = kInconclusive;
      co.checks.push_back(r);
    }
    int holds = 0, fails = 0, nm = 0;
    for (auto& r : co.checks) {
      holds += r.verdict == kHolds;
      fails += r.verdict == kFails;
      nm += r.verdict == kNotMeasured;
    }
    int n = static_cast<int>(co.checks.size());
    if (c.require == "all") {
      if (fails > 0) co.verdict = kFails;
      else if (nm > 0) co.verdict = kNotMeasured;
      else if (holds == n) co.verdict = kHolds;
      else co.verdict = kInconclusive;
    } else {
      if (holds > 0) co.verdict = kHolds;
      else if (nm > 0) co.verdict = kNotMeasured;
      else if (fails == n) co.verdict = kFails;
      else co.verdict = kInconclusive;
    }
    out.push_back(std::move(co));
  }
  return out;
}

std::string render_claims(const ResultsView& v, const std::vector<ClaimOutcome>& out, const stats::PairedOptions& o,
                          const std::string& source) {
  std::ostringstream os;
  int ci = static_cast<int>(std::lround(o.confidence * 100));
  os << "## Claims: " << v.title << "\n\n";
  os << "Measured results: `" << source << "`. Each claim is a list of checks on these results (the experiment "
        "config's [[claims]]); a check **holds** when its "
     << ci << "% interval lies on the claimed side of the threshold, **fails** when it lies on the other side, and is "
        "**inconclusive at this n** when the interval straddles it. Intervals: paired bootstrap over items ("
     << o.resamples << " resamples, seed " << o.seed
     << "; the Average resamples items within each benchmark); p-values test a zero difference: exact McNemar for "
        "0/1 scores, else the bootstrap. A claim holds when all its checks hold, fails when one fails.\n\n";
  int counts[4] = {0, 0, 0, 0};
  os << "| Claim | Statement | Verdict |\n|---|---|---|\n";
  for (auto& c : out) {
    os << "| " << c.claim.id << " | " << c.claim.text << " | " << c.verdict << " |\n";
    counts[c.verdict == kHolds ? 0 : c.verdict == kFails ? 1 : c.verdict == kInconclusive ? 2 : 3]++;
  }
  os << "\n" << counts[0] << " hold, " << counts[1] << " fail, " << counts[2] << " inconclusive at this n, "
     << counts[3] << " not measured.\n";
  for (auto& c : out) {
    os << "\n### Claim " << c.claim.id << ": " << c.verdict << "\n\n" << c.claim.text << "\n";
    if (!c.claim.source.empty()) os << "(" << c.claim.source << ")\n";
    os << "\n| Check | Measured | " << ci << "% interval | Paper | Test | Verdict |\n|---|---:|---:|---:|---|---|\n";
    for (auto& r : c.checks) {
      bool pct = r.check.stat != "diff";
      auto num = [&](double x) { return pct ? f2(x) : sgn(x); };
      os << "| " << r.check.describe() << " | " << (r.estimate ? num(*r.estimate) : "—") << " | "
         << (r.lo ? "[" + num(*r.lo) + ", " + num(*r.hi) + "]" : "—") << " | "
         << (r.check.paper ? num(*r.check.paper) : "—") << " | " << (r.test.empty() ? r.detail : r.test) << " | "
         << r.verdict << " |\n";
    }
  }
  return os.str();
}

}  // namespace bm::report
