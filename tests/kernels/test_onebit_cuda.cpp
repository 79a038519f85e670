// CUDA kernels vs the libtorch reference (on the CPU) over one table of
// shapes x dtypes. Skipped, with a message, without a CUDA device or when
// the build has no CUDA kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kernels/onebit.hpp"
#include "kernels/onebit_ref.hpp"

namespace bk = bm::kernels;

namespace {

struct Case {
  std::vector<int64_t> shape;
  torch::Dtype dtype;
  bool misaligned;  // a view at storage offset 1: exercises the scalar path
};

std::string name_of(const Case& c) {
  std::ostringstream o;
  for (size_t i = 0; i < c.shape.size(); ++i) o << (i ? "x" : "") << c.shape[i];
  o << "_" << (c.dtype == torch::kFloat32 ? "f32" : c.dtype == torch::kFloat16 ? "f16" : "bf16");
  if (c.misaligned) o << "_offset1";
  return o.str();
}

std::vector<Case> table() {
  std::vector<std::vector<int64_t>> shapes = {{1, 1}, {7}, {13, 3}, {8}, {33, 65}, {1000, 1001}, {4096, 11008}};
  std::vector<Case> out;
  for (auto dt : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    for (auto& s : shapes) out.push_back({s, dt, false});
    out.push_back({{257, 31}, dt, true});
    out.push_back({{1024, 64}, dt, true});
  }
  return out;
}

bool have_cuda(std::string* why) {
  if (!bk::cuda_kernels_built()) {
    *why = "this build has no CUDA kernels (configure with -DBITMERGE_CUDA=ON on a machine with nvcc)";
    return false;
  }
  if (!torch::cuda::is_available()) {
    *why = "no CUDA device visible to libtorch; run on the GPU machine (scripts/device/kernels_check.sh)";
    return false;
  }
  return true;
}

// Random data with exact zeros and negative zeros sprinkled in (sign(0) = +1).
torch::Tensor make_input(const Case& c, int64_t seed) {
  torch::manual_seed(seed);
  int64_t n = 1;
  for (auto d : c.shape) n *= d;
  auto base = torch::randn({n + 1}, torch::kFloat32) * 0.02;
  base.index_put_({torch::arange(0, n + 1, 97)}, 0.0);
  if (n + 1 > 5) base.index_put_({torch::arange(5, n + 1, 101)}, -0.0);
  auto t = base.to(c.dtype);
  return c.misaligned ? t.narrow(0, 1, n).view(c.shape) : t.narrow(0, 0, n).view(c.shape);
}

// On `dev`, possibly as a misaligned view like the CPU input.
torch::Tensor to_dev_like(const torch::Tensor& cpu, const Case& c, torch::Device dev) {
  if (!c.misaligned) return cpu.clone().to(dev);  // a copy even when dev is the CPU
  auto buf = torch::empty({cpu.numel() + 1}, cpu.options().device(dev));
  auto v = buf.narrow(0, 1, cpu.numel()).view(cpu.sizes());
  v.copy_(cpu);
  return v;
}

// Identical values expected (same IEEE operations); a tolerance of one unit
// of the dtype is allowed for robustness, but at most 1e-4 of the entries may
// differ at all.
void expect_close(const torch::Tensor& got_any, const torch::Tensor& want_any, const std::string& what) {
  auto got = got_any.to(torch::kCPU).to(torch::kFloat32).reshape({-1});
  auto want = want_any.to(torch::kCPU).to(torch::kFloat32).reshape({-1});
  ASSERT_EQ(got.numel(), want.numel()) << what;
  const double rtol = got_any.scalar_type() == torch::kBFloat16 ? 1.0 / 128
                      : got_any.scalar_type() == torch::kFloat16 ? 1.0 / 1024
                                                                 : 1e-6;
  auto diff = (got - want).abs();
  auto bound = want.abs() * rtol + 1e-7;
  const int64_t bad = diff.gt(bound).sum().item<int64_t>();
  const int64_t differ = got.ne(want).sum().item<int64_t>();
  EXPECT_EQ(bad, 0) << what << ": " << bad << " entries beyond tolerance, max diff " << diff.max().item<float>();
  EXPECT_LE(differ, std::max<int64_t>(1, got.numel() / 10000))
      << what << ": " << differ << " of " << got.numel() << " entries not bit-identical";
}

void check_pack(const Case& c, torch::Device dev) {
  auto x = make_input(c, 11);
  auto want = bk::ref::pack_signs(x);
  auto got = bk::pack_signs(to_dev_like(x, c, dev));
  ASSERT_EQ(got.bits.device().type(), dev.type());
  EXPECT_EQ(got.shape, c.shape);
  ASSERT_EQ(got.bits.numel(), want.bits.numel());
  auto gb = got.bits.to(torch::kCPU);
  const int64_t wrong = gb.ne(want.bits).sum().item<int64_t>();
  EXPECT_EQ(wrong, 0) << wrong << " packed bytes differ";
  const float ga = got.alpha.to(torch::kCPU).to(torch::kFloat32).item<float>();
  const float wa = want.alpha.to(torch::kFloat32).item<float>();
  // alpha's reduction order differs (fp32 partials vs fp64): within one fp16 ulp.
  EXPECT_NEAR(ga, wa, std::abs(wa) / 1024.0 + 1e-7) << "alpha";
  EXPECT_EQ(got.alpha.scalar_type(), torch::kFloat16);
}

void check_unpack_add(const Case& c, torch::Device dev) {
  auto x = make_input(c, 12);
  auto packed_cpu = bk::ref::pack_signs(x);
  bk::Packed packed_gpu{packed_cpu.bits.to(dev), packed_cpu.alpha.to(dev), packed_cpu.shape};
  expect_close(bk::unpack_signs(packed_gpu, c.dtype), bk::ref::unpack_signs(packed_cpu, c.dtype), "unpack");

  auto w_cpu = make_input(c, 13) * 10;
  auto w_gpu = to_dev_like(w_cpu, c, dev);
  const double scale = 0.7;
  auto want = w_cpu.clone();
  bk::ref::add_packed_(want, packed_cpu, scale);
  bk::add_packed_(w_gpu, packed_gpu, scale);
  expect_close(w_gpu, want, "add_packed_");
}

void check_ties(const Case& c, torch::Device dev) {
  // Mixed inputs: a dense delta of the case's dtype, a dense fp32 delta, two packed.
  auto d0 = make_input(c, 21);
  auto d1 = make_input({c.shape, torch::kFloat32, false}, 22);
  auto p2 = bk::ref::pack_signs(make_input(c, 23));
  auto p3 = bk::ref::pack_signs(make_input(c, 24) * -1);
  bk::Packed g2{p2.bits.to(dev), p2.alpha.to(dev), p2.shape};
  bk::Packed g3{p3.bits.to(dev), p3.alpha.to(dev), p3.shape};
  auto gd0 = to_dev_like(d0, c, dev);
  auto gd1 = d1.to(dev);
  std::vector<bk::DeltaRef> cpu{{d0.contiguous(), nullptr, 1.0}, {d1, nullptr, 0.5}, {{}, &p2, 1.3}, {{}, &p3, 0.9}};
  std::vector<bk::DeltaRef> gpu{{gd0, nullptr, 1.0}, {gd1, nullptr, 0.5}, {{}, &g2, 1.3}, {{}, &g3, 0.9}};
  for (bool consensus : {true, false}) {
    for (bool mean : {true, false}) {
      const bk::CombineOptions o{consensus, mean};
      auto got = bk::ties_combine(gpu, c.shape, o);
      ASSERT_EQ(got.device().type(), dev.type());
      ASSERT_EQ(got.scalar_type(), torch::kFloat32);
      expect_close(got, bk::ref::ties_combine(cpu, c.shape, o),
                   std::string("ties consensus=") + (consensus ? "1" : "0") + " mean=" + (mean ? "1" : "0"));
    }
  }
  // K = 1 and K = kMax (8) kernels too.
  std::vector<bk::DeltaRef> one_c{{d0.contiguous(), nullptr, 2.0}}, one_g{{gd0, nullptr, 2.0}};
  expect_close(bk::ties_combine(one_g, c.shape, {}), bk::ref::ties_combine(one_c, c.shape, {}), "ties K=1");
  std::vector<bk::DeltaRef> eight_c, eight_g;
  for (int k = 0; k < 8; ++k) {
    eight_c.push_back(k % 2 ? bk::DeltaRef{{}, &p2, 0.25 * (k + 1)} : bk::DeltaRef{d1, nullptr, 0.1 * (k + 1)});
    eight_g.push_back(k % 2 ? bk::DeltaRef{{}, &g2, 0.25 * (k + 1)} : bk::DeltaRef{gd1, nullptr, 0.1 * (k + 1)});
  }
  expect_close(bk::ties_combine(eight_g, c.shape, {}), bk::ref::ties_combine(eight_c, c.shape, {}), "ties K=8");
}

class OnebitCuda : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string why;
    if (!have_cuda(&why)) GTEST_SKIP() << why;
  }
};

TEST_P(OnebitCuda, PackMatchesReference) { check_pack(GetParam(), torch::kCUDA); }
TEST_P(OnebitCuda, UnpackAndAddMatchReference) { check_unpack_add(GetParam(), torch::kCUDA); }
TEST_P(OnebitCuda, TiesCombineMatchesReference) { check_ties(GetParam(), torch::kCUDA); }

INSTANTIATE_TEST_SUITE_P(Table, OnebitCuda, ::testing::ValuesIn(table()),
                         [](const ::testing::TestParamInfo<Case>& i) { return name_of(i.param); });

// The same checks with the wrappers on the CPU (= the reference) for the
// small table cases: keeps this file's own helpers honest where no GPU is.
TEST(OnebitCudaHarness, DryRunOnCpu) {
  int ran = 0;
  for (const Case& c : table()) {
    int64_t n = 1;
    for (auto d : c.shape) n *= d;
    if (n > 1000000) continue;
    SCOPED_TRACE(name_of(c));
    check_pack(c, torch::kCPU);
    check_unpack_add(c, torch::kCPU);
    check_ties(c, torch::kCPU);
    ++ran;
  }
  EXPECT_GE(ran, 15);
}

TEST(OnebitCudaMisc, MoreThanMaxInputsFallsBackAndAgrees) {
  std::string why;
  if (!have_cuda(&why)) GTEST_SKIP() << why;
  auto d = torch::randn({100});
  std::vector<bk::DeltaRef> c, g;
  auto dg = d.to(torch::kCUDA);
  for (int k = 0; k < 10; ++k) {
    c.push_back({d * (k - 4.5), nullptr, 1.0});
    g.push_back({dg * (k - 4.5), nullptr, 1.0});
  }
  expect_close(bk::ties_combine(g, {100}, {}), bk::ref::ties_combine(c, {100}, {}), "ties K=10");
}

TEST(OnebitCudaMisc, DeviceMismatchIsAnError) {
  std::string why;
  if (!have_cuda(&why)) GTEST_SKIP() << why;
  auto p = bk::pack_signs(torch::ones({16}));
  auto w = torch::ones({16}, torch::TensorOptions().device(torch::kCUDA));
  EXPECT_ANY_THROW(bk::add_packed_(w, p, 1.0));
}

}  // namespace
