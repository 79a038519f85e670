// The libtorch reference (= CPU path) on cases computed by hand, and the
// wrappers' input validation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/core/error.hpp"
#include "kernels/onebit.hpp"
#include "kernels/onebit_ref.hpp"

namespace bk = bm::kernels;

namespace {
torch::Tensor f32(std::vector<float> v) { return torch::tensor(v, torch::kFloat32); }
std::vector<int> bytes_of(const torch::Tensor& t) {
  std::vector<int> out;
  auto c = t.to(torch::kCPU);
  for (int64_t i = 0; i < c.numel(); ++i) out.push_back(c[i].item<uint8_t>());
  return out;
}
float alpha_of(const bk::Packed& p) { return p.alpha.to(torch::kFloat32).item<float>(); }
}  // namespace

TEST(OnebitRef, BitOrderIsLsbFirstAndZeroIsPositive) {
  // elements 0..9: + - 0 - - + + - | + -0
  auto x = f32({1.f, -2.f, 0.f, -1.f, -3.f, 0.5f, 4.f, -0.25f, 2.f, -0.f});
  auto p = bk::pack_signs(x);
  // byte 0: bits 0,2,5,6 set = 1 + 4 + 32 + 64 = 101; byte 1: bit 0 (2) and bit 1 (-0 >= 0) = 3
  EXPECT_EQ(bytes_of(p.bits), (std::vector<int>{101, 3}));
  EXPECT_EQ(p.bits.scalar_type(), torch::kUInt8);
  EXPECT_EQ(p.shape, (std::vector<int64_t>{10}));
  // alpha = (1+2+0+1+3+0.5+4+0.25+2+0)/10 = 1.375, exact in fp16
  EXPECT_EQ(p.alpha.scalar_type(), torch::kFloat16);
  EXPECT_EQ(p.alpha.dim(), 0);
  EXPECT_FLOAT_EQ(alpha_of(p), 1.375f);
}

TEST(OnebitRef, OneByOneAndSignOfZero) {
  auto p = bk::pack_signs(torch::zeros({1, 1}));
  EXPECT_EQ(bytes_of(p.bits), (std::vector<int>{1}));
  EXPECT_EQ(alpha_of(p), 0.f);
  auto q = bk::pack_signs(f32({-0.75f}).reshape({1, 1}));
  EXPECT_EQ(bytes_of(q.bits), (std::vector<int>{0}));
  EXPECT_FLOAT_EQ(alpha_of(q), 0.75f);
  auto u = bk::unpack_signs(q, torch::kFloat32);
  ASSERT_EQ(u.sizes().vec(), (std::vector<int64_t>{1, 1}));
  EXPECT_FLOAT_EQ(u.item<float>(), -0.75f);
}

TEST(OnebitRef, AlphaIsMeanAbsRoundedToFp16) {
  // mean |x| = (0.1 + 0.2 + 0.3) / 3 = 0.2 -> fp16 0.199951171875
  auto p = bk::pack_signs(f32({0.1f, -0.2f, 0.3f}));
  EXPECT_EQ(alpha_of(p), 0.199951171875f);
  EXPECT_EQ(bytes_of(p.bits), (std::vector<int>{0b101}));
}

TEST(OnebitRef, UnpackIsAlphaTimesSign) {
  auto x = f32({2.f, -2.f, 4.f, -4.f, 0.f, 1.f, -1.f, 3.f, -3.f}).reshape({3, 3});
  auto p = bk::pack_signs(x);  // alpha = 20/9 -> fp16
  const float a = alpha_of(p);
  EXPECT_NEAR(a, 20.f / 9.f, 1e-3);
  auto u = bk::unpack_signs(p, torch::kBFloat16);
  EXPECT_EQ(u.scalar_type(), torch::kBFloat16);
  auto expect = f32({a, -a, a, -a, a, a, -a, a, -a}).reshape({3, 3}).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(u, expect));
}

TEST(OnebitRef, AddPackedInPlace) {
  auto delta = f32({1.f, -1.f, 0.f, -3.f});  // alpha 1.25, signs + - + -
  auto p = bk::pack_signs(delta);
  auto w = f32({10.f, 10.f, 10.f, 10.f});
  bk::add_packed_(w, p, 2.0);
  EXPECT_TRUE(torch::equal(w, f32({12.5f, 7.5f, 12.5f, 7.5f})));
  auto wh = torch::ones({4}, torch::kFloat16);
  bk::add_packed_(wh, p, 1.0);
  EXPECT_TRUE(torch::equal(wh.to(torch::kFloat32), f32({2.25f, -0.25f, 2.25f, -0.25f})));
}

TEST(OnebitRef, TiesHandExample) {
  // three deltas, weights 1, 1, 2
  auto d0 = f32({1.f, -2.f, 0.f, 3.f});
  auto d1 = f32({-1.f, -1.f, 5.f, 1.f});
  auto d2 = f32({0.5f, 1.f, -1.f, 0.f});
  std::vector<bk::DeltaRef> ds{{d0, nullptr, 1.0}, {d1, nullptr, 1.0}, {d2, nullptr, 2.0}};
  // weighted: v0 = {1,-2,0,3}, v1 = {-1,-1,5,1}, v2 = {1,2,-2,0}
  // sums {1,-1,3,4} -> majority {+,-,+,+}
  // entry0 kept v0,v2: num 2, den 3 -> 2/3 ; entry1 kept v0,v1: -3/2 ; entry2 kept v1: 5/1 ; entry3 v0,v1: 4/2
  auto out = bk::ties_combine(ds, {4}, {true, true});
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(out, f32({2.f / 3.f, -1.5f, 5.f, 2.f})));
  auto sum_only = bk::ties_combine(ds, {4}, {true, false});
  EXPECT_TRUE(torch::equal(sum_only, f32({2.f, -3.f, 5.f, 4.f})));
  // no consensus: plain weighted sum {1,-1,3,4}, mean divides by sum of weights 4
  auto ta = bk::ties_combine(ds, {4}, {false, false});
  EXPECT_TRUE(torch::equal(ta, f32({1.f, -1.f, 3.f, 4.f})));
  auto tm = bk::ties_combine(ds, {4}, {false, true});
  EXPECT_TRUE(torch::equal(tm, f32({0.25f, -0.25f, 0.75f, 1.f})));
}

TEST(OnebitRef, TiesWithPackedAndAllZeroEntry) {
  auto d0 = f32({0.f, 2.f});
  auto packed = bk::pack_signs(f32({-0.f, -2.f}));  // alpha 1, signs + - (sign(-0) = +)
  std::vector<bk::DeltaRef> ds{{d0, nullptr, 1.0}, {torch::Tensor(), &packed, 1.0}};
  // v0 = {0, 2}, v1 = {1, -1}; sums {1, 1} -> +,+ ; entry0 kept v1 only -> 1/1; entry1 kept v0 -> 2/1
  auto out = bk::ties_combine(ds, {2}, {true, true});
  EXPECT_TRUE(torch::equal(out, f32({1.f, 2.f})));
  // all zero entry: nothing kept -> 0
  auto z = torch::zeros({2});
  std::vector<bk::DeltaRef> zs{{z, nullptr, 1.0}, {z, nullptr, 1.0}};
  EXPECT_TRUE(torch::equal(bk::ties_combine(zs, {2}, {true, true}), torch::zeros({2})));
}

TEST(OnebitWrappers, ClearErrors) {
  auto p = bk::pack_signs(torch::ones({4, 4}));
  auto w = torch::ones({4, 3});
  try {
    bk::add_packed_(w, p, 1.0);
    FAIL() << "shape mismatch accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_packed_"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bk::pack_signs(torch::ones({3}, torch::kInt32)), bm::Error);
  EXPECT_THROW(bk::pack_signs(torch::Tensor()), bm::Error);
  auto wt = torch::ones({4, 4}).t();
  EXPECT_THROW(bk::add_packed_(wt, p, 1.0), bm::Error);  // not contiguous
  bk::Packed bad = p;
  bad.bits = bad.bits.narrow(0, 0, 1);
  EXPECT_THROW(bk::unpack_signs(bad, torch::kFloat32), bm::Error);
  EXPECT_THROW(bk::unpack_signs(p, torch::kInt64), bm::Error);
  EXPECT_THROW(bk::ties_combine({}, {4}, {}), bm::Error);
  std::vector<bk::DeltaRef> mismatch{{torch::ones({3}), nullptr, 1.0}};
  EXPECT_THROW(bk::ties_combine(mismatch, {4}, {}), bm::Error);
  std::vector<bk::DeltaRef> neither{{torch::Tensor(), nullptr, 1.0}};
  EXPECT_THROW(bk::ties_combine(neither, {4}, {}), bm::Error);
}

TEST(OnebitRef, RoundTripRandom) {
  torch::manual_seed(3);
  auto x = torch::randn({37, 11});
  auto p = bk::pack_signs(x);
  EXPECT_EQ(p.bits.numel(), (37 * 11 + 7) / 8);
  auto u = bk::unpack_signs(p, torch::kFloat32);
  const float a = alpha_of(p);
  EXPECT_NEAR(a, x.abs().mean().item<float>(), 1e-3 * a);
  auto expect = torch::where(x.ge(0), torch::full_like(x, a), torch::full_like(x, -a));
  EXPECT_TRUE(torch::equal(u, expect));
}
