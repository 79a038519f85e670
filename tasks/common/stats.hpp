// Statistics over per-item scores: standard errors (lm-evaluation-harness's
// definitions) and paired tests of two variants on the same items.
// Definitions and the reasons behind them: docs/statistics.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm::stats {

double mean(const std::vector<double>& x);
// lm-eval sample_stddev: sqrt(sum (x - mean)^2 / (n - 1)); 0 for n < 2.
double sample_stddev(const std::vector<double>& x);
// lm-eval mean_stderr: sample_stddev / sqrt(n). lm-eval uses it for every
// metric whose aggregation is the mean: acc, acc_norm, exact_match, mc1, mc2
// (truthfulqa_mc2 aggregates with "mean"), pass@1. 0 for n < 2.
double mean_stderr(const std::vector<double>& x);
// Standard error of a mean of K independent means: sqrt(sum se_k^2) / K.
double average_stderr(const std::vector<double>& ses);

// The bootstrap's random numbers: SplitMix64 (Steele et al. 2014), index into
// n items = high 64 bits of x * n. Written out so that a reference in any
// language (tests/report/stats_ref.py) draws the very same resamples.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next();
  size_t index(size_t n);  // in [0, n)
 private:
  uint64_t s_;
};

// numpy.percentile(x, q) with the default linear interpolation (q in 0..100).
double percentile(std::vector<double> x, double q);

// Exact two-sided binomial test of k successes in n trials at p = 1/2
// (scipy.stats.binomtest(k, n).pvalue); 1 for n = 0.
double binom_two_sided_half(int64_t k, int64_t n);

struct PairedOptions {
  int resamples = 10000;   // bootstrap resamples
  uint64_t seed = 0;
  double confidence = 0.95;
  std::string test = "auto";  // auto (McNemar when every score is 0/1, else bootstrap) | mcnemar | bootstrap
};

struct PairedResult {
  std::string test;                 // "mcnemar-exact" or "paired-bootstrap"
  size_t n = 0;                     // items (per benchmark summed, for an average)
  double mean_a = 0, mean_b = 0;    // in the scores' unit (0..1)
  double diff = 0;                  // mean_a - mean_b
  double se_diff = 0;               // sd of per-item differences / sqrt(n) (average: combined like average_stderr)
  double ci_lo = 0, ci_hi = 0;      // percentile bootstrap interval of diff
  double p = 1;                     // two-sided
  int64_t a_only = 0, b_only = 0;   // discordant pairs (binary scores): A right & B wrong, A wrong & B right
  int resamples = 0;
  uint64_t seed = 0;
  double confidence = 0.95;
};

// Paired comparison of a and b (same items, same order). Throws bm::Error on
// a length mismatch or n = 0.
PairedResult paired_compare(const std::vector<double>& a, const std::vector<double>& b, const PairedOptions& o);

// The same for the unweighted average over benchmarks (the paper's Average):
// each resample draws items within each benchmark (with replacement, n_k of
// them, benchmarks in the given order) and takes the mean over benchmarks of
// the per-benchmark mean difference. p: McNemar cannot combine benchmarks, so
// the bootstrap's. a[k], b[k] = the scores of benchmark k.
PairedResult paired_compare_average(const std::vector<std::vector<double>>& a,
                                    const std::vector<std::vector<double>>& b, const PairedOptions& o);

// Bootstrap interval of the ratio 100 * mean-over-benchmarks(a) / mean-over-benchmarks(b)
// (e.g. "% of Routing's performance"): {ratio, lo, hi}; same resampling as above.
struct RatioResult {
  double ratio = 0, lo = 0, hi = 0;
};
RatioResult paired_ratio_average(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                                 const PairedOptions& o);

// Share of b's gain over `base` that a keeps, 100 * (mean(a) - mean(base)) / (mean(b) - mean(base)),
// means over benchmarks (items resampled jointly for the three variants within each benchmark),
// with its bootstrap interval. E.g. how much of the Math expert's gain over the base a merge keeps
// on the math benchmarks. bm::Error when b's gain is 0 (undefined).
RatioResult paired_gain_kept_average(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                                     const std::vector<std::vector<double>>& base, const PairedOptions& o);

bool all_binary(const std::vector<double>& x);

}  // namespace bm::stats
