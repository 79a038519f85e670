// Magnitude selection (kernels/select.hpp): the reference on hand-computed
// cases and against a full sort; the CUDA radix select against the reference
// over a table of sizes x value distributions x k (skipped without CUDA).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "harness/core/error.hpp"
#include "kernels/onebit.hpp"
#include "kernels/select.hpp"
#include "kernels/select_ref.hpp"

namespace bk = bm::kernels;

namespace {

// The definition: the k-th largest |x| by a full sort, and the count above it.
bk::MagnitudeCut by_sort(const torch::Tensor& x, int64_t k) {
  auto a = x.to(torch::kCPU).to(torch::kFloat32).reshape({-1}).abs();
  auto sorted = std::get<0>(a.sort(/*dim=*/0, /*descending=*/true));
  bk::MagnitudeCut c;
  c.thr = sorted[k - 1].item<float>();
  c.greater = (a > c.thr).sum().item<int64_t>();
  return c;
}

bool have_cuda() { return bk::cuda_kernels_built() && torch::cuda::is_available(); }

enum class Dist { Normal, Quantized, Equal, BfDiff, Wide };
const char* dist_name(Dist d) {
  switch (d) {
    case Dist::Normal: return "normal";
    case Dist::Quantized: return "quantized";
    case Dist::Equal: return "equal";
    case Dist::BfDiff: return "bf16diff";
    default: return "wide";
  }
}

torch::Tensor make(Dist d, int64_t n, int64_t seed) {
  torch::manual_seed(seed);
  switch (d) {
    case Dist::Normal: {
      auto t = torch::randn({n}) * 0.02;
      if (n > 10) t.index_put_({torch::arange(0, n, 7)}, 0.0), t.index_put_({torch::arange(3, n, 11)}, -0.0);
      return t;
    }
    case Dist::Quantized:  // 7 values: huge runs of ties, zeros and negative zeros
      return torch::randint(-3, 4, {n}).to(torch::kFloat32) * 0.25 * (torch::rand({n}) < 0.5).to(torch::kFloat32).mul(2).sub(1);
    case Dist::Equal: return torch::full({n}, -0.5f);
    case Dist::BfDiff: {  // what a merge sees: bf16 expert - bf16 base in fp32
      auto b = (torch::randn({n}) * 0.02).to(torch::kBFloat16).to(torch::kFloat32);
      auto e = (b + torch::randn({n}) * 0.001).to(torch::kBFloat16).to(torch::kFloat32);
      return e - b;
    }
    default: {  // denormals to 1e30
      auto t = torch::randn({n}) * torch::pow(10.0, torch::randint(-44, 31, {n}).to(torch::kFloat64)).to(torch::kFloat32);
      return t;
    }
  }
}

}  // namespace

TEST(SelectRef, HandComputed) {
  auto x = torch::tensor({3.0f, -5.0f, 1.0f, 5.0f, -0.0f, 2.0f});
  auto c = bk::ref::kth_largest_abs(x, 1);
  EXPECT_EQ(c.thr, 5.0f);
  EXPECT_EQ(c.greater, 0);
  c = bk::ref::kth_largest_abs(x, 2);  // the two 5s tie
  EXPECT_EQ(c.thr, 5.0f);
  EXPECT_EQ(c.greater, 0);
  c = bk::ref::kth_largest_abs(x, 3);
  EXPECT_EQ(c.thr, 3.0f);
  EXPECT_EQ(c.greater, 2);
  c = bk::ref::kth_largest_abs(x, 6);  // -0 == 0
  EXPECT_EQ(c.thr, 0.0f);
  EXPECT_EQ(c.greater, 5);
  EXPECT_THROW(bk::kth_largest_abs(x, 0), bm::Error);
  EXPECT_THROW(bk::kth_largest_abs(x, 7), bm::Error);
  EXPECT_THROW(bk::kth_largest_abs(torch::tensor({1, 2}), 1), bm::Error);
}

TEST(SelectRef, EqualsSortOnEveryDistribution) {
  for (Dist d : {Dist::Normal, Dist::Quantized, Dist::Equal, Dist::BfDiff, Dist::Wide}) {
    auto x = make(d, 5003, 3);
    for (int64_t k : {int64_t(1), int64_t(2), int64_t(1500), int64_t(2501), int64_t(5002), int64_t(5003)}) {
      auto got = bk::ref::kth_largest_abs(x, k);
      auto want = by_sort(x, k);
      EXPECT_EQ(got.thr, want.thr) << dist_name(d) << " k=" << k;
      EXPECT_EQ(got.greater, want.greater) << dist_name(d) << " k=" << k;
      EXPECT_LT(got.greater, k);
    }
  }
}

TEST(SelectCuda, EqualsReferenceOverTable) {
  if (!have_cuda()) GTEST_SKIP() << "no CUDA kernels or no CUDA device; run on the GPU machine";
  const std::vector<int64_t> sizes = {1, 5, 33, 1000, (1 << 20) + 3, int64_t(4096) * 11008};
  int checked = 0;
  for (int64_t n : sizes) {
    for (Dist d : {Dist::Normal, Dist::Quantized, Dist::Equal, Dist::BfDiff, Dist::Wide}) {
      if (n > (1 << 21) && (d == Dist::Equal || d == Dist::Wide)) continue;  // keep the run short
      auto x = make(d, n, 17 + n);
      std::vector<int64_t> ks = {1, n, std::max<int64_t>(1, n / 2), std::max<int64_t>(1, static_cast<int64_t>(0.3 * n)),
                                 std::max<int64_t>(1, n - 1)};
      auto gx = x.to(torch::kCUDA);
      for (int64_t k : ks) {
        auto want = bk::ref::kth_largest_abs(x, k);
        auto got = bk::kth_largest_abs(gx, k);
        std::ostringstream what;
        what << dist_name(d) << " n=" << n << " k=" << k;
        EXPECT_EQ(got.thr, want.thr) << what.str();
        EXPECT_EQ(got.greater, want.greater) << what.str();
        ++checked;
      }
    }
  }
  // A misaligned view (scalar loads) and bf16 input.
  auto x = make(Dist::BfDiff, 100001, 5);
  auto buf = torch::empty({x.numel() + 1}, torch::TensorOptions().device(torch::kCUDA));
  auto view = buf.narrow(0, 1, x.numel());
  view.copy_(x);
  for (int64_t k : {int64_t(1), int64_t(50000), int64_t(100001)}) {
    auto want = bk::ref::kth_largest_abs(x, k);
    auto got = bk::kth_largest_abs(view, k);
    EXPECT_EQ(got.thr, want.thr) << "offset view k=" << k;
    EXPECT_EQ(got.greater, want.greater) << "offset view k=" << k;
    auto xb = x.to(torch::kBFloat16);
    auto wb = bk::ref::kth_largest_abs(xb, k), gb = bk::kth_largest_abs(xb.to(torch::kCUDA), k);
    EXPECT_EQ(gb.thr, wb.thr) << "bf16 k=" << k;
    EXPECT_EQ(gb.greater, wb.greater) << "bf16 k=" << k;
  }
  EXPECT_GT(checked, 100);
}
