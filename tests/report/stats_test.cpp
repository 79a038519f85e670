// tasks/common/stats against the oracles in the test venv (tests/report/stats_ref.py):
// lm-eval's mean_stderr, SciPy's exact binomial test, NumPy's percentile and a
// NumPy paired bootstrap drawing the same SplitMix64 resamples; plus hand-made
// cases whose answer is known without any oracle.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/stats.hpp"
#include "tasks/common/task.hpp"
#include "tests/common/tmpdir.hpp"

using nlohmann::json;
namespace st = bm::stats;

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

// Runs stats_ref.py on `cases`; skips the test when the oracle is unavailable.
json oracle(const json& cases) {
  std::string py = env("BITMERGE_TEST_PYTHON"), src = env("BITMERGE_SOURCE_DIR");
  if (py.empty() || src.empty()) return json();
  std::string dir = bm::testutil::temp_dir("stats");
  bm::write_file_atomic(dir + "/in.json", cases.dump());
  std::string cmd = py + " " + src + "/tests/report/stats_ref.py < " + dir + "/in.json > " + dir + "/out.json 2> " + dir +
                    "/err.txt";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "stats_ref.py failed: " << bm::read_text_file(dir + "/err.txt");
    return json();
  }
  return json::parse(bm::read_text_file(dir + "/out.json"));
}

std::vector<double> bernoulli(size_t n, double p, uint32_t seed) {
  std::mt19937 g(seed);
  std::bernoulli_distribution d(p);
  std::vector<double> x(n);
  for (auto& v : x) v = d(g) ? 1.0 : 0.0;
  return x;
}

std::vector<double> uniform(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> d(0, 1);
  std::vector<double> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

}  // namespace

TEST(Stats, StderrMatchesLmEval) {
  std::vector<std::vector<double>> xs = {bernoulli(40, 0.3, 1), bernoulli(1319, 0.55, 2), uniform(817, 3),
                                         {1, 1, 1, 1}, {0, 1}};
  json cases = json::array();
  for (auto& x : xs) cases.push_back({{"kind", "stderr"}, {"x", x}});
  json ref = oracle(cases);
  if (ref.is_null()) GTEST_SKIP() << "BITMERGE_TEST_PYTHON / BITMERGE_SOURCE_DIR not set";
  for (size_t i = 0; i < xs.size(); ++i)
    EXPECT_NEAR(st::mean_stderr(xs[i]), ref[i]["stderr"].get<double>(), 1e-12) << "case " << i;
  // Hand check: {0, 1}: sd = sqrt(0.5), se = 0.5.
  EXPECT_DOUBLE_EQ(st::mean_stderr({0, 1}), 0.5);
}

TEST(Stats, AggregateMetricsCarriesStderrPerMetric) {
  auto task = bm::make_task("truthfulqa");
  std::vector<bm::Sample> ss;
  auto mc2 = uniform(50, 7);
  auto mc1 = bernoulli(50, 0.4, 8);
  for (size_t i = 0; i < 50; ++i) {
    bm::Sample s;
    s.id = std::to_string(i);
    s.metrics["mc1"] = mc1[i];
    s.metrics["mc2"] = mc2[i];
    ss.push_back(s);
  }
  auto agg = bm::aggregate_metrics(*task, ss);
  json ref = oracle(json::array({{{"kind", "stderr"}, {"x", mc2}}, {{"kind", "stderr"}, {"x", mc1}}}));
  if (ref.is_null()) GTEST_SKIP() << "no oracle";
  EXPECT_NEAR(agg["mc2_stderr"].get<double>(), ref[0]["stderr"].get<double>(), 1e-12);
  EXPECT_NEAR(agg["mc1_stderr"].get<double>(), ref[1]["stderr"].get<double>(), 1e-12);
  EXPECT_EQ(agg["n"].get<size_t>(), 50u);
  // Order of the samples (routed cells combine parts) does not change a bit of the errors.
  std::reverse(ss.begin(), ss.end());
  auto rev = bm::aggregate_metrics(*task, ss);
  EXPECT_EQ(rev["mc2_stderr"], agg["mc2_stderr"]);
  EXPECT_EQ(rev["mc1_stderr"], agg["mc1_stderr"]);
}

TEST(Stats, McNemarMatchesScipyBinomtest) {
  std::vector<std::pair<int64_t, int64_t>> kn = {{0, 0}, {3, 10}, {10, 10}, {5, 10}, {7, 30}, {1, 1}, {480, 1000}, {1000, 2100}};
  json cases = json::array();
  for (auto [k, n] : kn) cases.push_back({{"kind", "binom"}, {"k", k}, {"n", n}});
  json ref = oracle(cases);
  if (ref.is_null()) GTEST_SKIP() << "no oracle";
  for (size_t i = 0; i < kn.size(); ++i) {
    double p = st::binom_two_sided_half(kn[i].first, kn[i].second), r = ref[i]["p"].get<double>();
    EXPECT_NEAR(p, r, 1e-9 * std::max(1e-300, r) + 1e-15) << kn[i].first << "/" << kn[i].second;
  }
}

TEST(Stats, PercentileMatchesNumpy) {
  auto x = uniform(101, 11);
  json cases = json::array();
  for (double q : {0.0, 2.5, 50.0, 97.5, 100.0}) cases.push_back({{"kind", "percentile"}, {"x", x}, {"q", q}});
  json ref = oracle(cases);
  if (ref.is_null()) GTEST_SKIP() << "no oracle";
  size_t i = 0;
  for (double q : {0.0, 2.5, 50.0, 97.5, 100.0}) EXPECT_DOUBLE_EQ(st::percentile(x, q), ref[i++]["q"].get<double>()) << q;
}

TEST(Stats, PairedBootstrapAndMcNemarMatchTheNumpyReference) {
  st::PairedOptions o;
  o.resamples = 400;  // the Python side draws them one by one
  struct C {
    std::vector<std::vector<double>> a, b;
    uint64_t seed;
  };
  std::vector<C> cs = {
      {{bernoulli(60, 0.6, 21)}, {bernoulli(60, 0.45, 22)}, 7},           // binary: McNemar
      {{uniform(45, 23)}, {uniform(45, 24)}, 8},                          // continuous (mc2): bootstrap
      {{bernoulli(40, 0.5, 25), bernoulli(30, 0.2, 26), uniform(20, 27)},  // a 3-benchmark average
       {bernoulli(40, 0.4, 28), bernoulli(30, 0.3, 29), uniform(20, 30)}, 9},
  };
  json cases = json::array();
  for (auto& c : cs)
    cases.push_back({{"kind", "paired"}, {"a", c.a}, {"b", c.b}, {"seed", c.seed}, {"resamples", o.resamples}});
  cases.push_back({{"kind", "ratio"}, {"a", cs[2].a}, {"b", cs[2].b}, {"seed", 9}, {"resamples", o.resamples}});
  json ref = oracle(cases);
  if (ref.is_null()) GTEST_SKIP() << "no oracle";
  for (size_t i = 0; i < cs.size(); ++i) {
    o.seed = cs[i].seed;
    auto r = cs[i].a.size() == 1 ? st::paired_compare(cs[i].a[0], cs[i].b[0], o)
                                 : st::paired_compare_average(cs[i].a, cs[i].b, o);
    EXPECT_EQ(r.test, ref[i]["test"].get<std::string>()) << i;
    EXPECT_NEAR(r.diff, ref[i]["diff"].get<double>(), 1e-12) << i;
    EXPECT_NEAR(r.ci_lo, ref[i]["lo"].get<double>(), 1e-12) << i;
    EXPECT_NEAR(r.ci_hi, ref[i]["hi"].get<double>(), 1e-12) << i;
    EXPECT_NEAR(r.p, ref[i]["p"].get<double>(), 1e-9) << i;
    EXPECT_EQ(r.seed, cs[i].seed);
    EXPECT_LT(r.ci_lo, r.ci_hi) << i;
  }
  o.seed = 9;
  auto rr = st::paired_ratio_average(cs[2].a, cs[2].b, o);
  EXPECT_NEAR(rr.ratio, ref[3]["ratio"].get<double>(), 1e-9);
  EXPECT_NEAR(rr.lo, ref[3]["lo"].get<double>(), 1e-9);
  EXPECT_NEAR(rr.hi, ref[3]["hi"].get<double>(), 1e-9);
}

TEST(Stats, IdenticalVariantsGivePOne) {
  auto x = bernoulli(100, 0.5, 31);
  st::PairedOptions o;
  auto r = st::paired_compare(x, x, o);
  EXPECT_EQ(r.test, "mcnemar-exact");
  EXPECT_EQ(r.p, 1.0);
  EXPECT_EQ(r.diff, 0.0);
  EXPECT_EQ(r.ci_lo, 0.0);
  EXPECT_EQ(r.ci_hi, 0.0);
  o.test = "bootstrap";
  EXPECT_EQ(st::paired_compare(x, x, o).p, 1.0);
  auto u = uniform(100, 32);
  EXPECT_EQ(st::paired_compare(u, u, {}).p, 1.0);
  EXPECT_EQ(st::paired_compare_average({x, u}, {x, u}, {}).p, 1.0);
}

TEST(Stats, RightWhereverTheOtherIsWrongIsSignificantAtN100) {
  // B wrong on 30 of 100 items; A right on every item (so right wherever B is wrong).
  std::vector<double> a(100, 1.0), b(100, 1.0);
  for (size_t i = 0; i < 100; i += 3) b[i] = i < 90 ? 0.0 : 1.0;
  auto r = st::paired_compare(a, b, {});
  EXPECT_EQ(r.test, "mcnemar-exact");
  EXPECT_EQ(r.a_only, 30);
  EXPECT_EQ(r.b_only, 0);
  EXPECT_LT(r.p, 1e-3);
  EXPECT_NEAR(r.p, 2 * std::pow(0.5, 30), 1e-15);
  EXPECT_GT(r.ci_lo, 0.0);
  st::PairedOptions o;
  o.test = "bootstrap";
  EXPECT_LT(st::paired_compare(a, b, o).p, 1e-3);
  // The 7-benchmark-style average (bootstrap within each benchmark) sees it too.
  EXPECT_LT(st::paired_compare_average({a, a}, {b, b}, {}).p, 1e-3);
}

TEST(Stats, BadInputIsAClearError) {
  EXPECT_THROW(st::paired_compare({1, 0}, {1}, {}), bm::Error);
  EXPECT_THROW(st::paired_compare({}, {}, {}), bm::Error);
  st::PairedOptions o;
  o.test = "mcnemar";
  EXPECT_THROW(st::paired_compare({0.5, 1}, {1, 0}, o), bm::Error);  // not binary
  o.test = "nope";
  EXPECT_THROW(st::paired_compare({1, 0}, {1, 1}, o), bm::Error);
}
