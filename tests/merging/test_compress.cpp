// 1-bit compression and the packed task-vector file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "harness/core/error.hpp"
#include "merging/packed_format.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;

TEST(Compress, SignOfZeroIsPlusAndAlphaIsMeanAbs) {
  auto d = torch::tensor({0.0f, -2.0f, 3.0f, 0.0f, -1.0f, 2.0f, 0.0f, -4.0f, 5.0f}).reshape({3, 3});
  auto p = kernels::pack_signs(d);
  auto u = kernels::unpack_signs(p, torch::kFloat32);
  float alpha = static_cast<float>(c10::Half(17.0f / 9.0f));  // mean |d| rounded to fp16
  auto want = torch::tensor({1.f, -1.f, 1.f, 1.f, -1.f, 1.f, 1.f, -1.f, 1.f}).reshape({3, 3}) * alpha;
  EXPECT_TRUE(torch::equal(u, want)) << u;
  EXPECT_EQ(p.bits.numel(), 2);  // ceil(9/8)
  // LSB first: elements 0..7 -> bits of byte 0; 1 = delta >= 0.
  EXPECT_EQ(p.bits[0].item<uint8_t>(), 0b01101101);
}

TEST(Compress, OnlyTwoDimLinearWeightsAtThePosition) {
  EXPECT_TRUE(compressed_at(Position::Attention, "model.layers.3.self_attn.v_proj.weight", 2));
  EXPECT_FALSE(compressed_at(Position::Attention, "model.layers.3.mlp.up_proj.weight", 2));
  EXPECT_TRUE(compressed_at(Position::Mlp, "model.layers.3.mlp.down_proj.weight", 2));
  EXPECT_TRUE(compressed_at(Position::Linear, "model.layers.0.mlp.gate_proj.weight", 2));
  for (auto p : {Position::Attention, Position::Mlp, Position::Linear, Position::None}) {
    EXPECT_FALSE(compressed_at(p, "model.embed_tokens.weight", 2));
    EXPECT_FALSE(compressed_at(p, "lm_head.weight", 2));
    EXPECT_FALSE(compressed_at(p, "model.norm.weight", 1));
    EXPECT_FALSE(compressed_at(p, "model.layers.0.input_layernorm.weight", 1));
  }
}

class PackedFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("packed");
    cfg = test::tiny_config();
    test::write_tiny_model(dir + "/base", cfg, test::random_tensors(1));
    test::write_tiny_model(dir + "/expert", cfg, test::random_tensors(2, 0.1, test::random_tensors(1)));
    test::write_tiny_model(dir + "/other_base", cfg, test::random_tensors(3));
    base = Checkpoint::open(dir + "/base");
    expert = Checkpoint::open(dir + "/expert");
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  std::string dir;
  ModelConfig cfg;
  std::shared_ptr<Checkpoint> base, expert;
};

TEST_F(PackedFile, RoundTripIsExactlyAlphaSign) {
  for (Position pos : {Position::Attention, Position::Mlp, Position::Linear}) {
    std::string out = dir + "/tv-" + position_name(pos) + ".safetensors";
    auto sum = write_packed_task_vector(*base, *expert, pos, "math", out);
    EXPECT_GT(sum.packed_tensors, 0);
    auto src = open_packed_task_vector(out, *base);
    EXPECT_EQ(src->name(), "math");
    EXPECT_EQ(src->position(), pos);
    for (auto& n : base->names()) {
      auto bf = base->get(n).to(torch::kFloat32);
      auto delta = expert->get(n).to(torch::kFloat32) - bf;
      Delta d = src->delta(n, bf);
      bool want_packed = compressed_at(pos, n, delta.dim());
      ASSERT_EQ(d.is_packed, want_packed) << n;
      if (want_packed) {
        float alpha = static_cast<float>(c10::Half(delta.abs().mean().item<float>()));
        auto want = torch::where(delta >= 0, alpha, -alpha);
        EXPECT_TRUE(torch::equal(d.to_dense(), want)) << n;
      } else {
        EXPECT_TRUE(torch::equal(d.dense, delta)) << n;  // fp32 checkpoint: the delta itself
      }
    }
  }
}

TEST_F(PackedFile, RefusesAnotherBase) {
  std::string out = dir + "/tv.safetensors";
  write_packed_task_vector(*base, *expert, Position::Attention, "math", out);
  auto other = Checkpoint::open(dir + "/other_base");
  try {
    open_packed_task_vector(out, *other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another base"), std::string::npos) << e.what();
  }
}

TEST_F(PackedFile, RefusesForeignAndCorruptFiles) {
  // a model file is not a task vector
  EXPECT_THROW(open_packed_task_vector(dir + "/base/model.safetensors", *base), Error);
  EXPECT_FALSE(is_packed_task_vector(dir + "/base/model.safetensors"));
  std::string out = dir + "/tv.safetensors";
  write_packed_task_vector(*base, *expert, Position::Linear, "math", out);
  EXPECT_TRUE(is_packed_task_vector(out));
  // truncated
  std::string data;
  {
    std::ifstream f(out, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(f), {});
  }
  {
    std::ofstream f(dir + "/trunc.safetensors", std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size() - 5));
  }
  EXPECT_THROW(open_packed_task_vector(dir + "/trunc.safetensors", *base), Error);
  // garbage header length
  {
    std::string bad = data;
    bad[0] = '\xff', bad[1] = '\xff', bad[2] = '\xff';
    std::ofstream f(dir + "/bad.safetensors", std::ios::binary);
    f.write(bad.data(), static_cast<std::streamsize>(bad.size()));
  }
  EXPECT_THROW(open_packed_task_vector(dir + "/bad.safetensors", *base), Error);
}
