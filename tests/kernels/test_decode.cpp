// The fused decode step's ops (kernels/decode.hpp): the libtorch references
// against loops written out by hand (CPU), then the CUDA kernels against the
// references on the GPU over head dims x GQA ratios x dtypes (skipped
// without a CUDA device).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "kernels/decode.hpp"

namespace bk = bm::kernels;

namespace {

// Row b of the step: keys [lo, slot] with lo = max(start, slot - window + 1).
int64_t lo_of(int64_t slot, int64_t start, int64_t window) {
  return window > 0 ? std::max(start, slot - window + 1) : start;
}

// out[b, h*D + d] by explicit loops in double.
torch::Tensor attention_loops(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const std::vector<int64_t>& slot, const std::vector<int64_t>& start, int64_t window,
                              double scale) {
  const int64_t rows = q.size(0), nh = q.size(1), D = q.size(2), nkv = k.size(1), rep = nh / nkv;
  auto qa = q.to(torch::kFloat64), ka = k.to(torch::kFloat64), va = v.to(torch::kFloat64);
  auto out = torch::zeros({rows, nh * D}, torch::kFloat64);
  for (int64_t b = 0; b < rows; ++b)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t j = h / rep, lo = lo_of(slot[b], start[b], window);
      std::vector<double> s;
      double m = -1e300;
      for (int64_t t = lo; t <= slot[b]; ++t) {
        double d = 0;
        for (int64_t e = 0; e < D; ++e) d += qa[b][h][e].item<double>() * ka[b][j][t][e].item<double>();
        s.push_back(d * scale);
        m = std::max(m, s.back());
      }
      double z = 0;
      for (auto& x : s) z += (x = std::exp(x - m));
      for (int64_t e = 0; e < D; ++e) {
        double a = 0;
        for (int64_t t = lo; t <= slot[b]; ++t) a += s[static_cast<size_t>(t - lo)] * va[b][j][t][e].item<double>();
        out[b][h * D + e] = a / z;
      }
    }
  return out;
}

}  // namespace

TEST(DecodeRef, AttentionIsSoftmaxOverEachRowsOwnKeys) {
  torch::manual_seed(1);
  const int64_t rows = 4, nh = 6, nkv = 2, D = 8, L = 21, S = 17;
  auto q = torch::randn({rows, nh, D});
  auto k = torch::randn({rows + 1, nkv, L, D}), v = torch::randn({rows + 1, nkv, L, D});
  const std::vector<int64_t> slot = {16, 3, 9, 0}, start = {2, 0, 9, 0};
  auto st = torch::tensor(slot, torch::kInt64), sa = torch::tensor(start, torch::kInt64);
  for (int64_t window : {0, 4}) {
    auto got = bk::ref::decode_attention(q, k, v, st, sa, S, window, 0.3);
    auto want = attention_loops(q, k, v, slot, start, window, 0.3);
    EXPECT_LE((got.to(torch::kFloat64) - want).abs().max().item<double>(), 1e-5) << "window " << window;
    // The dispatching wrapper (CPU -> reference) gives the same.
    EXPECT_TRUE(torch::equal(bk::decode_attention(q, k, v, st, sa, S, window, 0.3), got));
  }
  // Keys outside [start, slot] do not matter: change them, same result.
  auto k2 = k.clone();
  k2[0][0][0] += 100;   // before start of row 0
  k2[1][1][10] += 100;  // after slot of row 1
  EXPECT_TRUE(torch::allclose(bk::ref::decode_attention(q, k2, v, st, sa, S, 0, 0.3),
                              bk::ref::decode_attention(q, k, v, st, sa, S, 0, 0.3)));
}

TEST(DecodeRef, RopeRotatesAtRowPositionAndWritesOnlyTheSlot) {
  torch::manual_seed(2);
  const int64_t rows = 3, nh = 4, nkv = 2, D = 8, L = 12;
  auto qkv = torch::randn({rows, (nh + 2 * nkv) * D});
  auto inv = 1.0 / torch::pow(10000.0, torch::arange(0, D, 2).to(torch::kFloat32) / D);
  auto ck = torch::randn({rows, nkv, L, D}), cv = torch::randn({rows, nkv, L, D});
  auto ck0 = ck.clone(), cv0 = cv.clone();
  const std::vector<int64_t> slot = {5, 0, 11}, start = {2, 0, 4};
  auto q = bk::ref::rope_qkv_to_cache(qkv, nh, nkv, D, torch::tensor(slot), torch::tensor(start), inv, ck, cv);
  ASSERT_EQ(q.sizes(), (std::vector<int64_t>{rows, nh, D}));
  for (int64_t b = 0; b < rows; ++b) {
    const double pos = static_cast<double>(slot[b] - start[b]);
    auto rot = [&](int64_t off, int64_t d) {  // element d of RoPE(x), x = qkv[b, off : off + D]
      const int64_t i = d % (D / 2);
      const double th = pos * inv[i].item<double>();
      const double x = qkv[b][off + d].item<double>();
      const double other = d < D / 2 ? -qkv[b][off + d + D / 2].item<double>() : qkv[b][off + d - D / 2].item<double>();
      return x * std::cos(th) + other * std::sin(th);
    };
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(q[b][h][d].item<double>(), rot(h * D, d), 1e-5);
    for (int64_t j = 0; j < nkv; ++j)
      for (int64_t d = 0; d < D; ++d) {
        EXPECT_NEAR(ck[b][j][slot[b]][d].item<double>(), rot((nh + j) * D, d), 1e-5);
        EXPECT_EQ(cv[b][j][slot[b]][d].item<float>(), qkv[b][(nh + nkv + j) * D + d].item<float>());
      }
    // every other slot untouched
    for (int64_t t = 0; t < L; ++t)
      if (t != slot[b]) {
        EXPECT_TRUE(torch::equal(ck[b].select(1, t), ck0[b].select(1, t))) << b << " " << t;
        EXPECT_TRUE(torch::equal(cv[b].select(1, t), cv0[b].select(1, t))) << b << " " << t;
      }
  }
}

TEST(DecodeRef, AddRmsNormAndSiluMul) {
  torch::manual_seed(3);
  auto x = torch::randn({3, 10}), d = torch::randn({3, 10}), w = torch::rand({10}) + 0.5;
  auto x0 = x.clone();
  auto h = bk::ref::add_rms_norm(x, d, w, 1e-5);
  EXPECT_TRUE(torch::allclose(x, x0 + d));
  auto s = x0 + d;
  auto want = w * s / torch::sqrt((s * s).mean(-1, true) + 1e-5);
  EXPECT_LE((h - want).abs().max().item<double>(), 1e-5);
  auto x1 = x.clone();
  bk::ref::add_rms_norm(x, torch::Tensor(), w, 1e-5);
  EXPECT_TRUE(torch::equal(x, x1)) << "no delta: x must stay";
  auto gu = torch::randn({2, 6});
  auto g = gu.narrow(1, 0, 3), u = gu.narrow(1, 3, 3);
  EXPECT_LE((bk::ref::silu_mul(gu) - g / (1 + torch::exp(-g)) * u).abs().max().item<double>(), 1e-6);
}

TEST(DecodeRef, BadShapesNameTheArgument) {
  auto q = torch::randn({2, 4, 8});
  auto c = torch::randn({2, 2, 5, 8});
  auto slot = torch::tensor(std::vector<int64_t>{1, 2}), start = torch::tensor(std::vector<int64_t>{0, 0});
  try {
    bk::decode_attention(q, c, c, slot, start, 9, 0, 1.0);
    FAIL() << "S beyond the cache accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("decode_attention"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bk::decode_attention(q, c, c, torch::tensor(std::vector<int64_t>{1}), start, 5, 0, 1.0), std::exception);
  auto qkv = torch::randn({2, 10});
  EXPECT_THROW(bk::rope_qkv_to_cache(qkv, 4, 2, 8, slot, start, torch::ones({4}), c, c), std::exception);
}

// ---- CUDA kernels vs the references, on the GPU ----
namespace {
struct AttnCase {
  int64_t rows, nh, nkv, D, L, S, window;
  torch::Dtype dtype;
};
// Fraction of elements that differ, and the largest difference relative to
// the reference's scale.
std::pair<double, double> diff(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.to(torch::kFloat32).cpu(), y = b.to(torch::kFloat32).cpu();
  const double frac = (x != y).to(torch::kFloat32).mean().item<double>();
  const double rel = ((x - y).abs().max() / y.abs().max().clamp_min(1e-6)).item<double>();
  return {frac, rel};
}
}  // namespace

TEST(DecodeCuda, KernelsMatchReferences) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!bk::decode_kernels_cover(128, 1, torch::kBFloat16)) GTEST_SKIP() << "built without the CUDA kernels";
  torch::manual_seed(4);
  const torch::Device dev(torch::kCUDA);
  std::vector<AttnCase> cases;
  for (auto dt : {torch::kBFloat16, torch::kFloat16}) {
    cases.push_back({128, 32, 32, 128, 700, 640, 0, dt});  // LLaMA-2-7B decode, 1 split
    cases.push_back({1, 32, 32, 128, 700, 650, 0, dt});    // batch 1: many splits + combine
    cases.push_back({3, 32, 8, 128, 2100, 2049, 0, dt});   // Mistral GQA, > 1024 keys: forced splits
    cases.push_back({5, 32, 8, 128, 300, 290, 37, dt});    // sliding window
    cases.push_back({7, 6, 2, 64, 90, 77, 0, dt});         // mini family: D 64, rep 3
    cases.push_back({4, 8, 4, 64, 50, 50, 0, dt});         // rep 2
    cases.push_back({2, 16, 2, 64, 130, 129, 0, dt});      // rep 8
  }
  for (const auto& c : cases) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " nh " + std::to_string(c.nh) + " nkv " + std::to_string(c.nkv) +
                 " D " + std::to_string(c.D) + " S " + std::to_string(c.S) + " window " + std::to_string(c.window) +
                 (c.dtype == torch::kBFloat16 ? " bf16" : " f16"));
    auto o = torch::TensorOptions().device(dev).dtype(c.dtype);
    auto ck = torch::randn({c.rows, c.nkv, c.L, c.D}, o), cv = torch::randn({c.rows, c.nkv, c.L, c.D}, o);
    auto slot = torch::randint(0, c.S, {c.rows}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
    slot[0] = c.S - 1;  // one row uses the whole visible range
    auto start = (slot.to(torch::kFloat32) * torch::rand({c.rows}, torch::TensorOptions().device(dev)) * 0.5)
                     .to(torch::kInt64);
    start[0] = 0;
    // RoPE + cache write
    auto qkv = torch::randn({c.rows, (c.nh + 2 * c.nkv) * c.D}, o);
    auto inv = (1.0 / torch::pow(10000.0, torch::arange(0, c.D, 2).to(torch::kFloat32) / c.D)).to(dev);
    auto ck_r = ck.clone(), cv_r = cv.clone();
    auto q = bk::rope_qkv_to_cache(qkv, c.nh, c.nkv, c.D, slot, start, inv, ck, cv);
    auto q_r = bk::ref::rope_qkv_to_cache(qkv, c.nh, c.nkv, c.D, slot, start, inv, ck_r, cv_r);
    auto [fq, rq] = diff(q, q_r);
    EXPECT_LE(fq, 1e-3) << "RoPE q differs in " << fq << " of the elements";
    EXPECT_LE(rq, 1e-2);
    auto [fk, rk] = diff(ck, ck_r);
    EXPECT_LE(fk, 1e-3);
    EXPECT_LE(rk, 1e-2);
    EXPECT_TRUE(torch::equal(cv, cv_r)) << "V cache rows";
    // attention over the same cache
    auto a = bk::decode_attention(q_r, ck_r, cv_r, slot, start, c.S, c.window, 1.0 / std::sqrt(double(c.D)));
    auto a_r = bk::ref::decode_attention(q_r, ck_r, cv_r, slot, start, c.S, c.window, 1.0 / std::sqrt(double(c.D)));
    auto [fa, ra] = diff(a, a_r);
    EXPECT_LE(ra, 2e-2) << "attention off by " << ra << " of its scale";
    EXPECT_LE(fa, 0.2) << "attention differs from the reference in " << fa << " of the elements";
  }
  for (auto dt : {torch::kBFloat16, torch::kFloat16}) {
    auto o = torch::TensorOptions().device(dev).dtype(dt);
    for (int64_t H : {4096, 5120, 384}) {
      auto x = torch::randn({37, H}, o), d = torch::randn({37, H}, o), w = torch::rand({H}, o) + 0.5;
      auto x_r = x.clone();
      auto h = bk::add_rms_norm(x, d, w, 1e-5);
      auto h_r = bk::ref::add_rms_norm(x_r, d, w, 1e-5);
      EXPECT_TRUE(torch::equal(x, x_r)) << "residual add, H " << H;
      auto [fh, rh] = diff(h, h_r);
      EXPECT_LE(fh, 0.02) << "norm differs in " << fh << ", H " << H;
      EXPECT_LE(rh, 1e-2);
      auto h0 = bk::add_rms_norm(x, torch::Tensor(), w, 1e-5);
      EXPECT_TRUE(torch::equal(x, x_r)) << "no delta: x must stay";
      EXPECT_LE(diff(h0, bk::ref::add_rms_norm(x_r, torch::Tensor(), w, 1e-5)).second, 1e-2);
    }
    auto gu = torch::randn({33, 2 * 11008}, o) * 3;
    auto [fs, rs] = diff(bk::silu_mul(gu), bk::ref::silu_mul(gu));
    EXPECT_LE(fs, 1e-3) << "silu*up differs in " << fs;
    EXPECT_LE(rs, 1e-2);
  }
}
