// BitDelta scale distillation (harness/train/bitdelta.hpp, scheme bitdelta):
// on a tiny model the fitted scales lower the calibration logit MSE below the
// mean|delta| start; the packed file stores them in the sign layout, reads back
// as alpha_fitted (fp16) * sign(delta) and has the sign file's size; the scheme
// parses, counts 1 bit per entry, and is refused where it cannot be computed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/stat.h>

#include "harness/core/error.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/transformer.hpp"
#include "harness/train/bitdelta.hpp"
#include "merging/packed_format.hpp"
#include "tests/merging/tiny_model.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm;
using namespace bm::merging;

namespace {
using bmtest::error_of;
uint64_t file_size(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}
}  // namespace

TEST(BitDelta, SchemeParsingAndStorage) {
  auto c = parse_compression("attention:bitdelta", "k");
  EXPECT_EQ(c.position, Position::Attention);
  EXPECT_EQ(c.scheme, Scheme::BitDelta);
  EXPECT_EQ(compression_name(c), "attention:bitdelta");
  EXPECT_EQ(parse_compression(compression_name(c), "k"), c);
  EXPECT_NE(c, parse_compression("attention", "k"));
  EXPECT_EQ(compressed_matrix_bytes(c, 4096 * 4096), compressed_matrix_bytes(Compression(Position::Attention), 4096 * 4096));
  EXPECT_EQ(compressed_matrix_bytes(c, 4096 * 4096), 4096u * 4096u / 8u + 2u);
  EXPECT_NE(error_of([] { parse_compression("mlp:bitdelta=0.1", "--position"); }).find("takes no value"), std::string::npos);
  EXPECT_NE(error_of([] { parse_compression("mlp:bitdleta", "--position"); }).find("did you mean 'bitdelta'"),
            std::string::npos);
}

class BitDeltaModels : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("bitdelta");
    cfg = test::tiny_config(32, 16, 32, 2);
    test::write_tiny_model(dir + "/base", cfg, test::random_tensors(1, 0.3));
    // Expert: a heavy-tailed delta (mean|delta| is not the logit-optimal scale).
    test::write_tiny_model(dir + "/expert", cfg, [](const std::string& n, const std::vector<int64_t>& s) {
      auto b = test::random_tensors(1, 0.3)(n, s);
      torch::manual_seed(7 + std::hash<std::string>{}(n) % 1000);
      auto d = torch::randn(s) * 0.05;
      return b + d * d.abs() * 20;
    });
    base = Checkpoint::open(dir + "/base");
    expert = Checkpoint::open(dir + "/expert");
    bm_ = Transformer::load(dir + "/base", torch::kCPU, torch::kFloat32);
    em = Transformer::load(dir + "/expert", torch::kCPU, torch::kFloat32);
    torch::manual_seed(3);
    tokens = torch::randint(0, cfg.vocab_size, {16, 12}, torch::kInt64);
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  std::string dir;
  ModelConfig cfg;
  std::shared_ptr<Checkpoint> base, expert;
  std::shared_ptr<Transformer> bm_, em;
  torch::Tensor tokens;
};

TEST_F(BitDeltaModels, DistilledScalesLowerTheLogitLoss) {
  train::BitDeltaConfig c;
  c.steps = 200;
  c.batch_size = 4;
  c.lr = 5e-3;
  auto fit = train::fit_bitdelta_scales(*bm_, *em, Position::Linear, tokens, c);
  ASSERT_EQ(fit.init.size(), 2u * 7u);  // 4 attention + 3 MLP matrices per layer
  // The start is the sign scheme's alpha = mean|delta|.
  for (auto& [n, a] : fit.init) {
    auto d = expert->get(n).to(torch::kFloat32) - base->get(n).to(torch::kFloat32);
    EXPECT_FLOAT_EQ(a, d.abs().mean().item<float>()) << n;
  }
  EXPECT_EQ(fit.losses.size(), 200u);
  EXPECT_GT(fit.loss_init, 0.0);
  // On this random model the sign pattern dominates the error: the scales alone remove ~5% of it.
  EXPECT_LT(fit.loss_final, 0.97 * fit.loss_init) << "init " << fit.loss_init << " final " << fit.loss_final;
  // ... and the fit is a minimum along the common-scale direction: 0.9x and 1.1x are both worse.
  for (float k : {0.9f, 1.1f}) {
    auto scaled = fit.fitted;
    for (auto& [n, a] : scaled) a *= k;
    EXPECT_GT(train::bitdelta_logit_mse(*bm_, *em, Position::Linear, scaled, tokens, 4), fit.loss_final) << k;
  }
  int moved = 0;
  for (auto& [n, a] : fit.fitted) moved += std::fabs(a - fit.init.at(n)) > 1e-4f;
  EXPECT_GT(moved, 0);
  // The reported losses are the logit MSE of those scales (independent evaluation).
  EXPECT_NEAR(train::bitdelta_logit_mse(*bm_, *em, Position::Linear, fit.init, tokens, 5), fit.loss_init,
              1e-6 * fit.loss_init);
  EXPECT_NEAR(train::bitdelta_logit_mse(*bm_, *em, Position::Linear, fit.fitted, tokens, 5), fit.loss_final,
              1e-6 * fit.loss_final);
  // Only the position's matrices are compressed.
  auto att = train::fit_bitdelta_scales(*bm_, *em, Position::Attention, tokens, train::BitDeltaConfig{0, 4, 1e-4});
  EXPECT_EQ(att.init.size(), 2u * 4u);
  EXPECT_DOUBLE_EQ(att.loss_init, att.loss_final);  // 0 steps
}

TEST_F(BitDeltaModels, PackedFileRoundTripAndSize) {
  train::BitDeltaConfig c;
  c.steps = 20;
  c.lr = 2e-3;
  auto fit = train::fit_bitdelta_scales(*bm_, *em, Position::Attention, tokens, c);
  auto comp = parse_compression("attention:bitdelta", "k");
  std::string out = dir + "/bd.safetensors", sign_out = dir + "/sign.safetensors";
  auto sum = write_packed_task_vector(*base, *expert, comp, "math", out, &fit.fitted);
  EXPECT_EQ(sum.packed_tensors, 8);
  write_packed_task_vector(*base, *expert, Compression(Position::Attention), "math", sign_out);
  // Same tensors and sizes as the sign file; only the metadata key scheme = "bitdelta" differs.
  EXPECT_NEAR(double(file_size(out)), double(file_size(sign_out)), 32.0);
  SafetensorsFile f(out);
  EXPECT_EQ(f.metadata().at("scheme"), "bitdelta");
  auto src = open_packed_task_vector(out, *base);
  EXPECT_EQ(src->compression(), comp);
  for (auto& n : base->names()) {
    auto bf = base->get(n).to(torch::kFloat32);
    auto delta = expert->get(n).to(torch::kFloat32) - bf;
    Delta d = src->delta(n, bf);
    if (compressed_at(Position::Attention, n, delta.dim())) {
      ASSERT_TRUE(d.is_packed) << n;
      ASSERT_NE(f.find(n + ".signs"), nullptr);
      float a16 = torch::full({}, fit.fitted.at(n)).to(torch::kFloat16).to(torch::kFloat32).item<float>();
      auto want = torch::where(delta >= 0, torch::ones_like(delta), -torch::ones_like(delta)) * a16;
      EXPECT_TRUE(torch::allclose(d.to_dense(), want, 0, 1e-7)) << n;
    } else {
      EXPECT_TRUE(torch::equal(d.to_dense(), delta)) << n;
    }
  }
}

TEST_F(BitDeltaModels, RefusedWithoutFittedScales) {
  auto comp = parse_compression("mlp:bitdelta", "k");
  auto e1 = error_of([&] { write_packed_task_vector(*base, *expert, comp, "math", dir + "/x.safetensors"); });
  EXPECT_NE(e1.find("--calib"), std::string::npos) << e1;
  auto e2 = error_of([&] { expert_from_checkpoint("math", expert, comp); });
  EXPECT_NE(e2.find("not computed on the fly"), std::string::npos) << e2;
  std::map<std::string, float> partial{{"model.layers.0.mlp.up_proj.weight", 0.1f}};
  auto e3 = error_of([&] { write_packed_task_vector(*base, *expert, comp, "math", dir + "/y.safetensors", &partial); });
  EXPECT_NE(e3.find("no fitted bitdelta scale"), std::string::npos) << e3;
}
