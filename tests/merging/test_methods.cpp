// Exact, hand-computed 4x4 cases for every merge method (expected values are
// literals worked out on paper; see the comments), plus the sparsifiers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/core/error.hpp"
#include "merging/general.hpp"
#include "merging/registry.hpp"

using namespace bm;
using namespace bm::merging;

namespace {
const char* kName = "model.layers.0.self_attn.q_proj.weight";

torch::Tensor m4(std::vector<float> v) { return torch::tensor(v).reshape({4, 4}); }

// |d1| and |d2| are each a permutation of 1..16, so top-8 trims are unambiguous
// and mean|d| = 8.5 exactly.
torch::Tensor d1() { return m4({16, -2, 3, -15, 5, 14, -7, 1, -9, 10, 4, -12, 13, -6, 8, 11}); }
torch::Tensor d2() { return m4({-8, 6, -12, -3, 16, -1, 9, 2, -14, -5, 11, 7, 4, 15, -10, -13}); }
// mean|d3| = 14*4/16 = 3.5; two zeros (sign(0) = +1 when compressed).
torch::Tensor d3() { return m4({-4, 4, -4, 4, 4, -4, 4, -4, -4, -4, 4, 4, 0, 0, -4, 4}); }

Delta dense(torch::Tensor t) {
  Delta d;
  d.dense = t;
  return d;
}
Delta packed(torch::Tensor t) {
  Delta d;
  d.is_packed = true;
  d.packed = kernels::pack_signs(t);
  return d;
}

torch::Tensor run(const std::string& method, std::vector<Delta> deltas, std::map<std::string, std::string> settings,
                  int route = -1) {
  const MethodInfo& m = find_method(method);
  std::vector<std::string> names;
  for (size_t k = 0; k < deltas.size(); ++k) names.push_back("e" + std::to_string(k));
  static Params P;
  P = resolve_params(m, settings, names);
  TensorJob j;
  j.name = kName;
  j.role = classify_tensor(kName).role;
  j.base = torch::ones({4, 4});
  j.deltas = std::move(deltas);
  j.expert_names = names;
  j.params = &P;
  j.route = route;
  return m.merge(j);
}

void expect_eq(const torch::Tensor& got, const torch::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::equal(got, want)) << "got\n" << got << "\nwant\n" << want;
}
}  // namespace

TEST(MergeMethods, TaskArithmeticHandComputed) {
  // 1 + 0.5 * (d1 + d2); d1 + d2 = [8,4,-9,-18, 21,13,2,3, -23,5,15,-5, 17,9,-2,-2]
  auto got = run("task_arithmetic", {dense(d1()), dense(d2())}, {{"lambda", "0.5"}});
  expect_eq(got, m4({5, 3, -3.5, -8, 11.5, 7.5, 2, 2.5, -10.5, 3.5, 8.5, -1.5, 9.5, 5.5, 0, 0}));
}

TEST(MergeMethods, AverageWeightedHandComputed) {
  // 1 + (1*d1 + 3*d2) / 4
  auto got = run("average", {dense(d1()), dense(d2())}, {{"e1.weight", "3"}});
  expect_eq(got, m4({-1, 5, -7.25, -5, 14.25, 3.75, 6, 2.75, -11.75, -0.25, 10.25, 3.25, 7.25, 10.75, -4.5, -6}));
}

TEST(MergeMethods, TiesHandComputed) {
  // top-8 of d1: [16,0,0,-15, 0,14,0,0, -9,10,0,-12, 13,0,0,11]
  // top-8 of d2: [0,0,-12,0, 16,0,9,0, -14,0,11,0, 0,15,-10,-13]
  // elected signs from the sum; disjoint mean: entry 8 = (-9-14)/2, entry 15 keeps d2's -13.
  auto got = run("ties", {dense(d1()), dense(d2())}, {{"density", "0.5"}});
  expect_eq(got, m4({17, 1, -11, -14, 17, 15, 10, 1, -10.5, 11, 12, -11, 14, 16, -9, -12}));
}

TEST(MergeMethods, TiesGlobalTrimEqualsTensorTrimOnOneTensor) {
  std::vector<double> thr{9.0, 9.0};  // 8th largest |d| of both = 9
  const MethodInfo& m = find_method("ties");
  Params P = resolve_params(m, {{"density", "0.5"}, {"trim", "global"}}, {"e0", "e1"});
  TensorJob j;
  j.name = kName;
  j.base = torch::ones({4, 4});
  j.deltas = {dense(d1()), dense(d2())};
  j.expert_names = {"e0", "e1"};
  j.params = &P;
  j.global_thresholds = &thr;
  expect_eq(m.merge(j), m4({17, 1, -11, -14, 17, 15, 10, 1, -10.5, 11, 12, -11, 14, 16, -9, -12}));
}

TEST(MergeMethods, DareTiesDensityOneHandComputed) {
  // No drop at density 1; sign election on d1 + d2, kept entries summed (no disjoint mean).
  auto got = run("dare_ties", {dense(d1()), dense(d2())}, {{"density", "1"}});
  expect_eq(got, m4({17, 7, -11, -17, 22, 15, 10, 4, -22, 11, 16, -11, 18, 16, -9, -12}));
}

TEST(MergeMethods, DareDropsOrRescalesEveryEntry) {
  // Each entry of (out - base) is either 0 (dropped) or d / density (kept, rescaled).
  auto got = run("dare", {dense(d1())}, {{"density", "0.5"}, {"seed", "3"}}) - 1;
  auto want_kept = d1() * 2;
  auto ok = (got == 0) | (got == want_kept);
  EXPECT_TRUE(ok.all().item<bool>()) << got;
  EXPECT_GT((got != 0).sum().item<int64_t>(), 0);
  EXPECT_LT((got != 0).sum().item<int64_t>(), 16);
  // density 1: plain task arithmetic
  expect_eq(run("dare", {dense(d1()), dense(d2())}, {{"density", "1"}, {"lambda", "0.5"}}),
            run("task_arithmetic", {dense(d1()), dense(d2())}, {{"lambda", "0.5"}}));
}

TEST(MergeMethods, RoutingHandComputed) {
  expect_eq(run("routing", {dense(d1()), dense(d2())}, {}, 1), 1 + d2());
  // A compressed routed expert: base + 8.5 * sign(d1).
  expect_eq(run("routing", {packed(d1()), dense(d2())}, {}, 0), 1 + 8.5 * torch::sign(d1()));
}

TEST(MergeMethods, OneBitHandComputed) {
  // 1 + C(d1) + 0.5 * TIES(C(d2), C(d3)); C(d2) = 8.5 sign(d2), C(d3) = 3.5 sign(d3) (sign(0)=+1).
  // Equal signs -> +-(8.5+3.5)/2 = +-6; opposite signs -> C(d2) wins (+-8.5).
  auto got = run("onebit", {packed(d1()), packed(d2()), packed(d3())}, {{"lambda", "0.5"}}, 0);
  expect_eq(got, m4({6.5, -4.5, 6.5, -11.75, 12.5, 6.5, -4.5, 13.75, -10.5, 6.5, 12.5, -4.5, 12.5, -4.5, 6.5, 5.25}));
}

TEST(MergeMethods, CompressedExpertsAcceptedByEveryMethod) {
  // Table 7: merging compressed experts. TA of C(d1), C(d3) = 1 + 8.5 sign(d1) + 3.5 sign(d3).
  auto s1 = torch::where(d1() >= 0, 1.0, -1.0), s3 = torch::where(d3() >= 0, 1.0, -1.0);
  expect_eq(run("task_arithmetic", {packed(d1()), packed(d3())}, {}), 1 + 8.5 * s1 + 3.5 * s3);
  expect_eq(run("average", {packed(d1()), packed(d3())}, {}), 1 + (8.5 * s1 + 3.5 * s3) / 2);
  // TIES at density 1 on packed inputs goes through the packed kernel path.
  auto t = run("ties", {packed(d1()), packed(d3())}, {{"density", "1"}});
  auto agree = s1 == s3;
  expect_eq(t, 1 + torch::where(agree, s1 * 6.0, 8.5 * s1));
  for (auto m : {"dare", "dare_ties"}) EXPECT_EQ(run(m, {packed(d1()), packed(d3())}, {}).sizes(), (c10::IntArrayRef{4, 4}));
}

TEST(MergeMethods, TrimKeepsExactlyDensityTimesNumel) {
  torch::manual_seed(0);
  auto d = torch::randn({64, 33});
  for (double density : {0.5, 0.2, 0.01}) {
    auto t = trim_magnitude(d, density);
    EXPECT_EQ((t != 0).sum().item<int64_t>(), std::max<int64_t>(1, static_cast<int64_t>(density * d.numel())));
    // every kept |value| >= every dropped one
    auto kept_min = t.abs().masked_select(t != 0).min().item<float>();
    auto dropped_max = d.abs().masked_select(t == 0).max().item<float>();
    EXPECT_GE(kept_min, dropped_max);
  }
}

TEST(MergeMethods, DarePreservesExpectation) {
  // E[dare(d)] = d. d = 1 everywhere, density 0.3: each entry is 0 or 1/0.3; the
  // mean over 1e6 entries has std sqrt(0.7/0.3)/1000 = 0.0015; tolerance 0.01 (> 6 sigma).
  auto d = torch::ones({1000, 1000});
  auto r = dare_drop(d, 0.3, 42, "e", "t");
  EXPECT_NEAR(r.mean().item<double>(), 1.0, 0.01);
  EXPECT_NEAR((r != 0).to(torch::kFloat).mean().item<double>(), 0.3, 0.005);
}

TEST(MergeMethods, DropMaskPoolGivesDareDropsMask) {
  DropMaskPool pool;
  auto d = torch::randn({64, 33});
  pool.request("math", "w", {64, 33}, 0.3, 5);
  pool.request("code", "w", {64, 33}, 0.3, 5);
  pool.request("math", "w", {64, 33}, 0.3, 5);  // again: one draw
  EXPECT_EQ(pool.pending(), 2u);
  auto keep = pool.take("math", "w", d.sizes(), 0.3, 5);
  ASSERT_TRUE(keep.defined());
  EXPECT_EQ(keep.scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal((d * keep) / 0.3, dare_drop(d, 0.3, 5, "math", "w")));
  EXPECT_FALSE(torch::equal(keep, torch::rand({64, 33}) < 0.3)) << "seeded, not the global generator";
  EXPECT_FALSE(pool.take("math", "w", d.sizes(), 0.3, 5).defined()) << "a mask is handed out once";
  EXPECT_FALSE(pool.take("code", "w", at::IntArrayRef({65, 33}), 0.3, 5).defined()) << "other sizes: not used";
  EXPECT_FALSE(pool.take("chat", "w", d.sizes(), 0.3, 5).defined()) << "never requested";
  EXPECT_EQ(pool.served(), 1);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(MergeMethods, DareSameSeedBitIdentical) {
  torch::manual_seed(1);
  auto d = torch::randn({128, 64});
  auto a = dare_drop(d, 0.4, 7, "math", "x"), b = dare_drop(d, 0.4, 7, "math", "x");
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, dare_drop(d, 0.4, 8, "math", "x")));
  EXPECT_FALSE(torch::equal(a, dare_drop(d, 0.4, 7, "code", "x")));  // independent masks per expert
}

TEST(MergeRegistry, UnknownNamesSuggestClosest) {
  try {
    find_method("tie");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'ties'"), std::string::npos) << e.what();
  }
  try {
    resolve_params(find_method("ties"), {{"densty", "0.3"}}, {"a"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'density'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_params(find_method("ties"), {{"density", "1.5"}}, {"a"}), Error);
  EXPECT_THROW(resolve_params(find_method("ties"), {{"density", "abc"}}, {"a"}), Error);
  EXPECT_THROW(resolve_params(find_method("ties"), {{"trim", "globl"}}, {"a"}), Error);
  EXPECT_THROW(resolve_params(find_method("ties"), {{"b.density", "0.3"}}, {"a"}), Error);   // no expert b
  EXPECT_THROW(resolve_params(find_method("ties"), {{"a.lambda", "0.3"}}, {"a"}), Error);    // lambda is global
  auto P = resolve_params(find_method("ties"), {{"a.density", "0.25"}}, {"a", "b"});
  EXPECT_EQ(P.f("density", "a"), 0.25);
  EXPECT_EQ(P.f("density", "b"), 0.5);  // default
  EXPECT_EQ(method_names().size(), 11u);  // + della, della_linear, breadcrumbs, breadcrumbs_ties
}

// ---- Model Breadcrumbs (mergekit magnitude_outliers) ----

TEST(MergeMethods, BreadcrumbsHandComputed) {
  // n = 16, density 0.5 -> keep 8, gamma 0.125 -> drop the 2 largest: of |d1| = 1..16
  // the kept are 7..14: [0,0,0,0, 0,14,-7,0, -9,10,0,-12, 13,0,8,11].
  auto got = run("breadcrumbs", {dense(d1())}, {{"density", "0.5"}, {"gamma", "0.125"}});
  expect_eq(got, m4({1, 1, 1, 1, 1, 15, -6, 1, -8, 11, 1, -11, 14, 1, 9, 12}));
}

TEST(MergeMethods, BreadcrumbsTiesHandComputed) {
  // kept d1 (above) and kept d2 = [-8,0,-12,0, 0,0,9,0, -14,0,11,7, 0,0,-10,-13];
  // elected sign of their sum, agreeing entries summed (normalize=false as mergekit).
  auto got = run("breadcrumbs_ties", {dense(d1()), dense(d2())}, {{"density", "0.5"}, {"gamma", "0.125"}});
  expect_eq(got, m4({-7, 1, -11, 1, 1, 15, 10, 1, -22, 11, 12, -11, 14, 1, -9, -12}));
}

TEST(MergeMethods, BreadcrumbsDropsFewerOutliersWhenDensityNeedsThem) {
  // density 0.9 -> keep 14; gamma 0.2 would drop 3, but only 16 - 14 = 2 can go: 16 and -15.
  auto got = run("breadcrumbs", {dense(d1())}, {{"density", "0.9"}, {"gamma", "0.2"}}) - 1;
  expect_eq(got, m4({0, -2, 3, 0, 5, 14, -7, 1, -9, 10, 4, -12, 13, -6, 8, 11}));
  // gamma 0: plain magnitude trim (the 8 largest), as TIES' trim of one expert.
  expect_eq(run("breadcrumbs", {dense(d1())}, {{"density", "0.5"}, {"gamma", "0"}}) - 1, trim_magnitude(d1(), 0.5));
  // density 1: untouched (as mergekit), even with gamma.
  expect_eq(run("breadcrumbs", {dense(d1())}, {{"density", "1"}, {"gamma", "0.5"}}) - 1, d1());
}

TEST(MergeMethods, BreadcrumbsRescaleMatchesTheL1Norm) {
  // kept |d1| = 7..14 sums to 84, all of |d1| to 136: kept * 136/84.
  auto got = run("breadcrumbs", {dense(d1())}, {{"density", "0.5"}, {"gamma", "0.125"}, {"rescale", "true"}}) - 1;
  auto kept = m4({0, 0, 0, 0, 0, 14, -7, 0, -9, 10, 0, -12, 13, 0, 8, 11});
  EXPECT_TRUE(torch::allclose(got, kept * (136.0 / 84.0), 1e-6, 1e-6)) << got;
  EXPECT_NEAR(got.abs().sum().item<double>(), 136.0, 1e-4);
}

// ---- DELLA (mergekit della_magprune) ----

TEST(MergeMethods, DellaProbabilitiesRiseWithRankPerRow) {
  // density 0.5, epsilon 0.2: p = 0.3 + 0.4 * (rank - 1) / 4, ranks of |d| within each row.
  auto d = torch::tensor({3.f, -1.f, 5.f, -2.f, 4.f, -10.f, 20.f, 30.f, -40.f, 50.f}).reshape({2, 5});
  auto p = della_probs(d, 0.5, 0.2);
  auto want = torch::tensor({0.5f, 0.3f, 0.7f, 0.4f, 0.6f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f}).reshape({2, 5});
  EXPECT_TRUE(torch::allclose(p, want, 0, 1e-6)) << p;
  // A 1-D tensor is one row.
  EXPECT_TRUE(torch::allclose(della_probs(d.reshape({-1}), 0.5, 0.2),
                              // ranks 1..10 over all ten: p = 0.3 + 0.4 * (rank - 1) / 9
                              torch::tensor({0.3888889f, 0.3f, 0.4777778f, 0.3444444f, 0.4333333f, 0.5222222f,
                                             0.5666667f, 0.6111111f, 0.6555556f, 0.7f}),
                              0, 1e-6));
}

TEST(MergeMethods, DellaMaskAndRescaleGivenTheDraws) {
  auto d = torch::tensor({3.f, -1.f, 5.f, -2.f, 4.f, -10.f, 20.f, 30.f, -40.f, 50.f}).reshape({2, 5});
  // p = [.5 .3 .7 .4 .6 / .3 .4 .5 .6 .7]; keep where draw < p.
  auto r = torch::tensor({0.45f, 0.35f, 0.8f, 0.1f, 0.55f, 0.9f, 0.1f, 0.2f, 0.7f, 0.65f}).reshape({2, 5});
  auto kept = torch::tensor({3.f, 0.f, 0.f, -2.f, 4.f, 0.f, 20.f, 30.f, 0.f, 50.f}).reshape({2, 5});
  expect_eq(della_magprune(d, 0.5, 0.2, r, false), kept);
  // L1 rescale: sum|d| = 165, sum|kept| = 109.
  EXPECT_TRUE(torch::allclose(della_magprune(d, 0.5, 0.2, r, true), kept * (165.0 / 109.0), 1e-6, 1e-6));
  expect_eq(della_magprune(d, 1.0, 0.2, r, true), d);                      // density 1: untouched
  expect_eq(della_magprune(d, 0.0, 0.2, r, true), torch::zeros_like(d));  // density 0: nothing
}

TEST(MergeMethods, DellaKeepRateFollowsTheRankRamp) {
  // One row of 4000 entries with |d| = 1..4000, density 0.4, epsilon 0.1: the
  // seeded masks keep, in expectation, p(rank) of each entry. Per quarter of
  // the ranks the mean p is 0.3125, 0.3375 ... ; check within 5 standard deviations.
  const int64_t n = 4000;
  auto mag = torch::arange(1, n + 1, torch::kFloat32);
  auto sign = torch::where(torch::arange(n) % 3 == 0, -1.0, 1.0).to(torch::kFloat32);
  auto d = (mag * sign).index_select(0, torch::randperm(n, torch::TensorOptions().dtype(torch::kLong)));
  auto p = della_probs(d, 0.4, 0.1);
  auto kept = della_magprune(d, 0.4, 0.1, seeded_draws(d, 7, "math", "t"), false) != 0;
  auto rank = d.abs() - 1;  // 0..n-1
  for (int q = 0; q < 4; ++q) {
    auto in_q = (rank >= q * n / 4) & (rank < (q + 1) * n / 4);
    double expect = p.masked_select(in_q).sum().item<double>();
    double var = (p * (1 - p)).masked_select(in_q).sum().item<double>();
    double got = kept.masked_select(in_q).sum().item<double>();
    EXPECT_NEAR(got, expect, 5 * std::sqrt(var)) << "quarter " << q;
    EXPECT_NEAR(expect, 1000 * (0.3 + 0.2 * (q + 0.5) / 4), 1.0) << "quarter " << q;
  }
  // Different seeds, experts or tensors draw different masks; the same ones the same.
  auto a = seeded_draws(d, 7, "math", "t");
  EXPECT_TRUE(torch::equal(a, seeded_draws(d, 7, "math", "t")));
  EXPECT_FALSE(torch::equal(a, seeded_draws(d, 8, "math", "t")));
  EXPECT_FALSE(torch::equal(a, seeded_draws(d, 7, "code", "t")));
  EXPECT_FALSE(torch::equal(a, seeded_draws(d, 7, "math", "u")));
}

TEST(MergeMethods, DellaThroughTheRegistry) {
  // density 1: no drop, no rescale -> della is TIES at density 1 and della_linear task arithmetic.
  expect_eq(run("della", {dense(d1()), dense(d2())}, {{"density", "1"}}),
            run("ties", {dense(d1()), dense(d2())}, {{"density", "1"}}));
  expect_eq(run("della_linear", {dense(d1()), dense(d2())}, {{"density", "1"}, {"lambda", "0.5"}}),
            run("task_arithmetic", {dense(d1()), dense(d2())}, {{"lambda", "0.5"}}));
  // della_linear = base + lambda * sum_k w_k MagPrune(d_k) with the (seed, expert, tensor) draws.
  auto got = run("della_linear", {dense(d1()), dense(d2())},
                 {{"density", "0.5"}, {"epsilon", "0.2"}, {"seed", "4"}, {"e1.weight", "0.5"}, {"lambda", "0.8"}});
  auto want = 1 + 0.8 * (della_magprune(d1(), 0.5, 0.2, seeded_draws(d1(), 4, "e0", kName), true) +
                         0.5 * della_magprune(d2(), 0.5, 0.2, seeded_draws(d2(), 4, "e1", kName), true));
  EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-6)) << got << want;
  EXPECT_FALSE(torch::equal(got, run("della_linear", {dense(d1()), dense(d2())},
                                     {{"density", "0.5"}, {"epsilon", "0.2"}, {"seed", "5"}, {"e1.weight", "0.5"},
                                      {"lambda", "0.8"}})));
}

TEST(MergeMethods, DellaEpsilonOutsideTheDensityIsAnError) {
  const MethodInfo& m = find_method("della");
  try {
    resolve_params(m, {{"density", "0.3"}, {"epsilon", "0.3"}}, {"math", "code"});
    FAIL() << "density - epsilon = 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--param epsilon"), std::string::npos) << e.what();
  }
  try {
    resolve_params(m, {{"math.density", "0.9"}}, {"math", "code"});  // 0.9 + 0.15 >= 1
    FAIL() << "density + epsilon >= 1 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("math.epsilon"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(resolve_params(m, {{"math.density", "1"}}, {"math", "code"}));  // no drop, epsilon unused
}
