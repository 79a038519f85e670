#include "harness/report/compare.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/report/paired.hpp"

namespace bm::report {
namespace {

std::string f2(double x) { return format_points(x); }
std::string sgn(double x) { return format_signed_points(x); }

std::optional<double> value(const ResultsView& v, const Row& r, const std::string& b) {
  if (b == "average") return r.measured_average(v.benchmarks);
  auto it = r.measured.find(b);
  if (it == r.measured.end()) return std::nullopt;
  return it->second;
}

// Exact mode: do the per-item scores differ (either side without items: no)?
bool items_differ(const Row& a, const Row& b, const std::vector<std::string>& benches) {
  for (auto& x : benches) {
    auto da = a.detail.find(x), db = b.detail.find(x);
    if (da == a.detail.end() || db == b.detail.end()) continue;
    if (!da->second.has_items() || !db->second.has_items()) continue;
    if (da->second.ids != db->second.ids || da->second.items != db->second.items) return true;
  }
  return false;
}

}  // namespace

CompareMode parse_compare_mode(const std::string& s) {
  if (s == "auto") return CompareMode::Auto;
  if (s == "exact") return CompareMode::Exact;
  if (s == "noise") return CompareMode::Noise;
  if (s == "tolerance") return CompareMode::Tolerance;
  bm::fail("--mode", "'" + s + "' is not a comparison mode" +
                         bm::did_you_mean(s, {"auto", "exact", "noise", "tolerance"}) +
                         "; use auto, exact, noise or tolerance");
}

std::string mode_name(CompareMode m) {
  switch (m) {
    case CompareMode::Auto: return "auto";
    case CompareMode::Exact: return "exact";
    case CompareMode::Noise: return "noise";
    case CompareMode::Tolerance: return "tolerance";
  }
  return "?";
}

std::string short_hashes(const nlohmann::json& h) {
  if (!h.is_object() || h.empty()) return "none recorded";
  std::string o;
  for (auto& [k, v] : h.items()) {
    std::string s = v.is_string() ? v.get<std::string>() : v.dump();
    if (s.rfind("sha256:", 0) == 0) s = s.substr(7);
    o += (o.empty() ? "" : ", ") + k + "=" + s.substr(0, 12);
  }
  return o;
}

CompareResult compare_results(const ResultsView& now, const ResultsView& base, double tol) {
  CompareOptions o;
  o.mode = CompareMode::Tolerance;
  o.tolerance = tol;
  return compare_results(now, base, o);
}

CompareResult compare_results(const ResultsView& now, const ResultsView& base, const CompareOptions& o) {
  if (o.tolerance < 0) bm::fail("--tolerance", "must be >= 0");
  if (!(o.sigmas > 0)) bm::fail("--sigmas", "must be > 0");
  if (o.alpha < 0 || o.alpha >= 1) bm::fail("--alpha", "must be in [0, 1) (0 = judge by --sigmas)");
  CompareResult res;
  CompareMode mode = o.mode;
  std::string noise_rule = o.alpha > 0 ? "a drop with paired p < " + f2(o.alpha)
                                       : "a drop beyond " + f2(o.sigmas) + " standard errors of the difference";
  noise_rule += " (cells without a standard error: more than " + f2(o.tolerance) + " points)";
  if (mode == CompareMode::Auto) {
    // Only weights that were actually hashed count ("sha256:<hex>"); a model that
    // was absent is recorded as "hf:<id>@<rev>", which proves nothing.
    auto hashed = [](const nlohmann::json& h) {
      if (!h.is_object() || h.empty()) return false;
      for (auto& [k, x] : h.items())
        if (!x.is_string() || x.get<std::string>().rfind("sha256:", 0) != 0) return false;
      return true;
    };
    bool have = hashed(now.model_sha256) && hashed(base.model_sha256);
    if (have && now.model_sha256 == base.model_sha256) {
      mode = CompareMode::Exact;
      res.header = "Same model weights in both files (" + short_hashes(now.model_sha256) +
                   "): exact comparison, any score difference is a regression.\n";
    } else {
      mode = CompareMode::Noise;
      res.header = (have ? "Model weights differ: new {" : "Model weights unknown: new {") +
                   short_hashes(now.model_sha256) + "} vs baseline {" + short_hashes(base.model_sha256) +
                   "}; noise rule: " + noise_rule + ".\n";
    }
  } else if (mode == CompareMode::Exact) {
    res.header = "Exact comparison: any score difference is a regression.\n";
  } else if (mode == CompareMode::Noise) {
    res.header = "Noise rule: " + noise_rule + ".\n";
  } else {
    res.header = "Tolerance rule: a drop of more than " + f2(o.tolerance) + " points.\n";
  }
  res.used = mode;
  std::ostringstream os, bad;
  const std::string head =
      "| Model | Benchmark | Baseline | New | Delta | SE of delta | Test | Status |\n|---|---|---:|---:|---:|---:|---|---|\n";
  os << head;
  auto cols = base.benchmarks;
  cols.push_back("average");
  for (auto& br : base.rows) {
    const Row* nr = now.row(br.name);
    for (auto& b : cols) {
      std::optional<double> bv = value(base, br, b);
      if (!bv) continue;
      std::optional<double> nv = nr ? value(now, *nr, b) : std::nullopt;
      std::string status, se_s = "—", test_s = "—";
      bool regression = false, improved = false;
      if (!nv) {
        status = "MISSING";
        ++res.missing;
      } else {
        ++res.compared;
        double d = *nv - *bv;
        if (mode == CompareMode::Exact) {
          bool changed = *nv != *bv ||
                         items_differ(*nr, br, b == "average" ? base.benchmarks : std::vector<std::string>{b});
          test_s = "exact";
          if (changed) status = "CHANGED", regression = true;
        } else if (mode == CompareMode::Tolerance) {
          test_s = "tolerance";
          regression = d < -o.tolerance;
          improved = d > o.tolerance;
        } else {
          std::string why;
          auto pt = paired_test(*nr, br, b, base.benchmarks, o.paired, &why);
          std::optional<double> se;
          double p = 1;
          if (pt) {
            se = 100.0 * pt->se_diff;
            p = pt->p;
            test_s = pt->test + ", " + format_p(p);
          } else {
            auto sn = nr->measured_stderr(b, now.benchmarks), sb = br.measured_stderr(b, base.benchmarks);
            if (sn && sb) se = std::sqrt(*sn * *sn + *sb * *sb), test_s = "unpaired se";
          }
          if (se) se_s = f2(*se);
          if (!se) {
            test_s = "tolerance (no se)";
            regression = d < -o.tolerance;
            improved = d > o.tolerance;
          } else if (o.alpha > 0 && pt) {
            regression = d < 0 && p < o.alpha;
            improved = d > 0 && p < o.alpha;
          } else {
            regression = d < -o.sigmas * *se;
            improved = d > o.sigmas * *se;
            if (*se > 0) test_s += (test_s.empty() ? "" : ", ") + std::string("z = ") + f2(d / *se);
          }
        }
        if (regression && status.empty()) status = "REGRESSION";
        else if (improved) status = "improved";
        else if (status.empty()) status = "ok";
        if (regression) ++res.regressions;
        if (improved) ++res.improvements;
      }
      std::string line = "| " + br.name + " | " + benchmark_label(b) + " | " + f2(*bv) + " | " +
                         (nv ? f2(*nv) : "—") + " | " + (nv ? sgn(*nv - *bv) : "—") + " | " + se_s + " | " + test_s +
                         " | " + status + " |\n";
      os << line;
      if (status != "ok") bad << line;
    }
  }
  std::ostringstream sum;
  sum << res.compared << " compared (" << mode_name(mode);
  if (mode == CompareMode::Tolerance) sum << ", tolerance " << f2(o.tolerance) << " points";
  if (mode == CompareMode::Noise)
    sum << (o.alpha > 0 ? ", alpha " + f2(o.alpha) : ", " + f2(o.sigmas) + " standard errors");
  sum << "): " << res.regressions << (mode == CompareMode::Exact ? " changed" : " regressions") << ", " << res.missing
      << " missing, " << res.improvements << " improved.\n";
  res.table = os.str() + "\n" + sum.str();
  bool pass = res.regressions == 0 && res.missing == 0;
  std::ostringstream md;
  md << "### bitmerge compare: " << (now.name.empty() ? base.name : now.name) << " — " << (pass ? "PASS" : "FAIL")
     << "\n\n" << res.header << "\n" << sum.str() << "\n";
  if (!bad.str().empty()) md << head << bad.str() << "\n";
  md << "<details><summary>All cells</summary>\n\n" << os.str() << "\n</details>\n";
  res.markdown = md.str();
  return res;
}

std::string compare_variants(const ResultsView& va, const std::string& a, const ResultsView& vb, const std::string& b,
                             const stats::PairedOptions& o, Format f) {
  const Row* ra = va.row(a);
  const Row* rb = vb.row(b);
  auto names = [](const ResultsView& v) {
    std::vector<std::string> n;
    for (auto& r : v.rows) n.push_back(r.name);
    return n;
  };
  if (!ra) bm::fail("variant '" + a + "'", "not in " + va.name + bm::did_you_mean(a, names(va)) + "; see `bitmerge table`");
  if (!rb) bm::fail("variant '" + b + "'", "not in " + vb.name + bm::did_you_mean(b, names(vb)) + "; see `bitmerge table`");
  if (va.benchmarks != vb.benchmarks) bm::fail(vb.name, "benchmark list differs from " + va.name + "'s; compare files of one experiment");
  auto cols = va.benchmarks;
  cols.push_back("average");
  std::ostringstream os;
  int ci = static_cast<int>(std::lround(o.confidence * 100));
  if (f == Format::Csv)
    os << "benchmark,n,a,a_stderr,b,b_stderr,diff,se_diff,ci_lo,ci_hi,p,test,a_only,b_only,resamples,seed\n";
  else
    os << "| Benchmark | n | A: " << a << " | B: " << b << " | A − B | " << ci << "% CI | p | Test |\n"
       << "|---|---:|---:|---:|---:|---:|---:|---|\n";
  std::vector<std::string> notes;
  for (auto& c : cols) {
    auto ma = value(va, *ra, c), mb = value(vb, *rb, c);
    auto sa = ra->measured_stderr(c, va.benchmarks), sb = rb->measured_stderr(c, vb.benchmarks);
    std::string why;
    auto pt = ma && mb ? paired_test(*ra, *rb, c, va.benchmarks, o, &why) : std::nullopt;
    if (!pt && ma && mb) notes.push_back(benchmark_label(c) + ": no paired test (" + why + ")");
    auto pm = [&](std::optional<double> m, std::optional<double> s) {
      if (!m) return std::string("—");
      return f2(*m) + (s ? " ± " + f2(*s) : "");
    };
    if (f == Format::Csv) {
      auto num = [](std::optional<double> x) { return x ? f2(*x) : std::string(); };
      os << c << "," << (pt ? std::to_string(pt->n) : "") << "," << num(ma) << "," << num(sa) << "," << num(mb) << ","
         << num(sb) << "," << (ma && mb ? f2(*ma - *mb) : "") << ","
         << (pt ? f2(100 * pt->se_diff) + "," + f2(100 * pt->ci_lo) + "," + f2(100 * pt->ci_hi) + "," +
                      std::to_string(pt->p) + "," + pt->test + "," + std::to_string(pt->a_only) + "," +
                      std::to_string(pt->b_only) + "," + std::to_string(pt->resamples) + "," + std::to_string(pt->seed)
                : ",,,,,,,,")
         << "\n";
    } else {
      std::string test = "—";
      if (pt) {
        test = pt->test;
        if (pt->test == "mcnemar-exact")
          test += " (" + std::to_string(pt->a_only) + " vs " + std::to_string(pt->b_only) + " discordant)";
      }
      os << "| " << benchmark_label(c) << " | " << (pt ? std::to_string(pt->n) : "—") << " | " << pm(ma, sa) << " | "
         << pm(mb, sb) << " | " << (ma && mb ? sgn(*ma - *mb) : "—") << " | "
         << (pt ? "[" + sgn(100 * pt->ci_lo) + ", " + sgn(100 * pt->ci_hi) + "]" : "—") << " | "
         << (pt ? format_p(pt->p).substr(4) : "—") << " | " << test << " |\n";
    }
  }
  if (f != Format::Csv) {
    os << "\nScores in points ± standard error (lm-eval's mean_stderr). CI: percentile paired bootstrap, "
       << o.resamples << " resamples, seed " << o.seed
       << "; Average resamples items within each benchmark. p: exact McNemar where every item score is 0/1, "
          "else the paired bootstrap (two-sided).\n";
    for (auto& n : notes) os << "- " << n << "\n";
  }
  return os.str();
}

}  // namespace bm::report
