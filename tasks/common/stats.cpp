#include "tasks/common/stats.hpp"

#include <algorithm>
#include <cmath>

#include "harness/core/error.hpp"

namespace bm::stats {

double mean(const std::vector<double>& x) {
  if (x.empty()) return 0;
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

double sample_stddev(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  double mu = mean(x), s = 0;
  for (double v : x) s += (v - mu) * (v - mu);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

double mean_stderr(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  return sample_stddev(x) / std::sqrt(static_cast<double>(x.size()));
}

double average_stderr(const std::vector<double>& ses) {
  if (ses.empty()) return 0;
  double s = 0;
  for (double v : ses) s += v * v;
  return std::sqrt(s) / static_cast<double>(ses.size());
}

uint64_t SplitMix64::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

size_t SplitMix64::index(size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

double percentile(std::vector<double> x, double q) {
  if (x.empty()) return 0;
  std::sort(x.begin(), x.end());
  double pos = q / 100.0 * static_cast<double>(x.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, x.size() - 1);
  double frac = pos - static_cast<double>(lo);
  // numpy's _lerp: a + (b - a) * t, evaluated from the upper end when t >= 0.5.
  double a = x[lo], b = x[hi];
  double d = b - a;
  return frac >= 0.5 ? b - d * (1.0 - frac) : a + d * frac;
}

double binom_two_sided_half(int64_t k, int64_t n) {
  if (n <= 0) return 1.0;
  int64_t m = std::min(k, n - k);
  if (2 * m == n) return 1.0;
  // P(X <= m) for X ~ Binomial(n, 1/2), summed in log space from the tail.
  double ln2n = static_cast<double>(n) * std::log(2.0);
  double lgn = std::lgamma(static_cast<double>(n) + 1);
  double acc = 0;
  for (int64_t i = 0; i <= m; ++i)
    acc += std::exp(lgn - std::lgamma(static_cast<double>(i) + 1) - std::lgamma(static_cast<double>(n - i) + 1) - ln2n);
  return std::min(1.0, 2.0 * acc);
}

bool all_binary(const std::vector<double>& x) {
  for (double v : x)
    if (v != 0.0 && v != 1.0) return false;
  return true;
}

namespace {

void check_options(const PairedOptions& o) {
  if (o.resamples < 1) bm::fail("bootstrap", "needs at least 1 resample (--resamples)");
  if (!(o.confidence > 0 && o.confidence < 1)) bm::fail("bootstrap", "confidence must be in (0, 1)");
  if (o.test != "auto" && o.test != "mcnemar" && o.test != "bootstrap")
    bm::fail("--test", "'" + o.test + "' is not one of auto, mcnemar, bootstrap");
}

// Bootstrap of the mean over benchmarks of per-benchmark mean differences.
std::vector<double> bootstrap_diffs(const std::vector<std::vector<double>>& d, const PairedOptions& o) {
  SplitMix64 rng(o.seed);
  std::vector<double> out(static_cast<size_t>(o.resamples));
  for (auto& r : out) {
    double tot = 0;
    for (auto& dk : d) {
      double s = 0;
      for (size_t i = 0; i < dk.size(); ++i) s += dk[rng.index(dk.size())];
      tot += s / static_cast<double>(dk.size());
    }
    r = tot / static_cast<double>(d.size());
  }
  return out;
}

PairedResult finish(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                    const PairedOptions& o) {
  check_options(o);
  if (a.size() != b.size() || a.empty()) bm::fail("paired test", "the two variants have different benchmark lists");
  PairedResult r;
  r.resamples = o.resamples;
  r.seed = o.seed;
  r.confidence = o.confidence;
  std::vector<std::vector<double>> d(a.size());
  std::vector<double> ses;
  bool binary = true;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].size() != b[k].size())
      bm::fail("paired test", "the two variants were scored on different numbers of items (" +
                                  std::to_string(a[k].size()) + " vs " + std::to_string(b[k].size()) + ")");
    if (a[k].empty()) bm::fail("paired test", "no items to compare");
    r.n += a[k].size();
    r.mean_a += mean(a[k]) / static_cast<double>(a.size());
    r.mean_b += mean(b[k]) / static_cast<double>(a.size());
    for (size_t i = 0; i < a[k].size(); ++i) {
      d[k].push_back(a[k][i] - b[k][i]);
      if (a[k][i] == 1.0 && b[k][i] == 0.0) ++r.a_only;
      if (a[k][i] == 0.0 && b[k][i] == 1.0) ++r.b_only;
    }
    ses.push_back(mean_stderr(d[k]));
    binary = binary && all_binary(a[k]) && all_binary(b[k]);
  }
  r.diff = 0;
  for (auto& dk : d) r.diff += mean(dk) / static_cast<double>(d.size());
  r.se_diff = average_stderr(ses);
  auto boot = bootstrap_diffs(d, o);
  double tail = (1.0 - o.confidence) / 2.0 * 100.0;
  r.ci_lo = percentile(boot, tail);
  r.ci_hi = percentile(boot, 100.0 - tail);
  bool mcnemar = a.size() == 1 && binary && o.test != "bootstrap";
  if (o.test == "mcnemar" && !mcnemar)
    bm::fail("--test mcnemar", a.size() > 1 ? "cannot combine benchmarks; use the bootstrap for an average"
                                            : "needs 0/1 scores on every item (this metric is not binary); use --test bootstrap");
  if (mcnemar) {
    r.test = "mcnemar-exact";
    r.p = binom_two_sided_half(r.a_only, r.a_only + r.b_only);
  } else {
    // Two-sided: share of resamples at least as far from the observed difference
    // as the observed difference is from 0 (the bootstrap distribution shifted to
    // the null), with the +1 correction; exactly 1 when the difference is 0.
    int64_t c = 0;
    for (double x : boot)
      if (std::fabs(x - r.diff) >= std::fabs(r.diff) - 1e-12) ++c;
    r.test = "paired-bootstrap";
    r.p = static_cast<double>(1 + c) / static_cast<double>(1 + o.resamples);
  }
  return r;
}

}  // namespace

PairedResult paired_compare(const std::vector<double>& a, const std::vector<double>& b, const PairedOptions& o) {
  return finish({a}, {b}, o);
}

PairedResult paired_compare_average(const std::vector<std::vector<double>>& a,
                                    const std::vector<std::vector<double>>& b, const PairedOptions& o) {
  return finish(a, b, o);
}

RatioResult paired_ratio_average(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                                 const PairedOptions& o) {
  check_options(o);
  if (a.size() != b.size() || a.empty()) bm::fail("ratio", "the two variants have different benchmark lists");
  RatioResult r;
  double ma = 0, mb = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].size() != b[k].size() || a[k].empty()) bm::fail("ratio", "the two variants were scored on different items");
    ma += mean(a[k]);
    mb += mean(b[k]);
  }
  if (mb == 0) bm::fail("ratio", "the reference variant scores 0 on every item; the ratio is undefined");
  r.ratio = 100.0 * ma / mb;
  SplitMix64 rng(o.seed);
  std::vector<double> boot;
  for (int i = 0; i < o.resamples; ++i) {
    double sa = 0, sb = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      double xa = 0, xb = 0;
      for (size_t j = 0; j < a[k].size(); ++j) {
        size_t t = rng.index(a[k].size());
        xa += a[k][t];
        xb += b[k][t];
      }
      sa += xa / static_cast<double>(a[k].size());
      sb += xb / static_cast<double>(a[k].size());
    }
    boot.push_back(sb == 0 ? 0.0 : 100.0 * sa / sb);
  }
  double tail = (1.0 - o.confidence) / 2.0 * 100.0;
  r.lo = percentile(boot, tail);
  r.hi = percentile(boot, 100.0 - tail);
  return r;
}

RatioResult paired_gain_kept_average(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                                     const std::vector<std::vector<double>>& base, const PairedOptions& o) {
  check_options(o);
  if (a.size() != b.size() || a.size() != base.size() || a.empty())
    bm::fail("gain kept", "the three variants have different benchmark lists");
  double ma = 0, mb = 0, m0 = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].size() != b[k].size() || a[k].size() != base[k].size() || a[k].empty())
      bm::fail("gain kept", "the three variants were scored on different items");
    ma += mean(a[k]);
    mb += mean(b[k]);
    m0 += mean(base[k]);
  }
  if (mb == m0) bm::fail("gain kept", "the reference variant scores the same as the base; its gain is 0 and the share undefined");
  RatioResult r;
  r.ratio = 100.0 * (ma - m0) / (mb - m0);
  SplitMix64 rng(o.seed);
  std::vector<double> boot;
  boot.reserve(static_cast<size_t>(o.resamples));
  for (int i = 0; i < o.resamples; ++i) {
    double sa = 0, sb = 0, s0 = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      double xa = 0, xb = 0, x0 = 0;
      for (size_t j = 0; j < a[k].size(); ++j) {
        size_t t = rng.index(a[k].size());
        xa += a[k][t];
        xb += b[k][t];
        x0 += base[k][t];
      }
      double n = static_cast<double>(a[k].size());
      sa += xa / n;
      sb += xb / n;
      s0 += x0 / n;
    }
    // A resample where b gained nothing has no share; it counts as keeping none of it.
    boot.push_back(sb == s0 ? 0.0 : 100.0 * (sa - s0) / (sb - s0));
  }
  double tail = (1.0 - o.confidence) / 2.0 * 100.0;
  r.lo = percentile(boot, tail);
  r.hi = percentile(boot, 100.0 - tail);
  return r;
}

}  // namespace bm::stats
