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
  EXPECT_EQ(method_names().size(), 7u);
}
