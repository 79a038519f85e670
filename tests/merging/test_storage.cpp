// Storage accounting: analytic bytes from shapes, checked by hand on a tiny
// config and against the config's parameter count for the paper's families.
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "merging/storage.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;

TEST(Storage, TinyConfigByHand) {
  // vocab 32, hidden 8, inter 16, 2 layers, 2 heads: embed 256 + head 256 +
  // per layer (q,k,v,o 4*64 + gate,up,down 3*128 + 2 norms 16 = 656) * 2 + final norm 8 = 1832 params.
  auto ts = tensors_from_config(test::tiny_config());
  uint64_t full = 0, attn = 0, lin = 0;
  for (auto& t : ts) {
    full += tensor_bytes(t, Position::None, 2);
    attn += tensor_bytes(t, Position::Attention, 2);
    lin += tensor_bytes(t, Position::Linear, 2);
  }
  EXPECT_EQ(full, 3664u);
  // attention: 8 matrices of 64 -> 64/8 + 2 = 10 bytes instead of 128
  EXPECT_EQ(attn, 3664u - 8 * (128 - 10));
  // + 6 mlp matrices of 128 -> 16 + 2 bytes instead of 256
  EXPECT_EQ(lin, 3664u - 8 * (128 - 10) - 6 * (256 - 18));
  StorageOptions o;
  auto r = storage_report("tiny", ts, o);
  ASSERT_GE(r.rows.size(), 4u);
  EXPECT_EQ(r.rows[0].variant, "Routing");
  EXPECT_EQ(r.rows[0].bytes, 3 * 3664u);
  EXPECT_DOUBLE_EQ(r.rows[1].ratio, 4.0 / 3.0);
  EXPECT_NE(r.to_markdown().find("% of Routing"), std::string::npos);
}

TEST(Storage, FamiliesMatchParameterCounts) {
  for (auto& f : family_presets()) {
    auto c = family_preset(f);
    uint64_t n = 0;
    for (auto& t : tensors_from_config(c)) n += tensor_bytes(t, Position::None, 1);
    EXPECT_EQ(static_cast<int64_t>(n), c.parameter_count()) << f;
  }
  // LLaMA-2 7B has 6,738,415,616 parameters; Mistral 7B 7,241,732,096.
  uint64_t l = 0, m = 0;
  for (auto& t : tensors_from_config(family_preset("llama2-7b"))) l += tensor_bytes(t, Position::None, 1);
  for (auto& t : tensors_from_config(family_preset("mistral-7b"))) m += tensor_bytes(t, Position::None, 1);
  EXPECT_EQ(l, 6738415616ull);
  EXPECT_EQ(m, 7241732096ull);
  EXPECT_THROW(family_preset("mistral7b"), Error);
}
