// The ternary (top-k sign, ComPEFT-style) compression scheme: hand-computed
// values, the 2-bit codes, the packed file, --compress parsing, merges and
// storage accounting (harness/models/arch.hpp Scheme::Ternary).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/stat.h>

#include "harness/core/error.hpp"
#include "harness/core/safetensors.hpp"
#include "merging/api.hpp"
#include "merging/packed_format.hpp"
#include "merging/storage.hpp"
#include "tests/merging/tiny_model.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm;
using namespace bm::merging;

namespace {
torch::Tensor m4(std::vector<float> v) { return torch::tensor(v).reshape({4, 4}); }
// |d1| is a permutation of 1..16.
torch::Tensor d1() { return m4({16, -2, 3, -15, 5, 14, -7, 1, -9, 10, 4, -12, 13, -6, 8, 11}); }
using bmtest::error_of;
}  // namespace

TEST(Ternary, TopKSignTimesMeanOfTheKeptHandComputed) {
  // density 0.25 -> the 4 largest |d|: 16, -15, 14, 13; alpha = (16+15+14+13)/4 = 14.5.
  auto t = ternary_topk(d1(), 0.25);
  EXPECT_TRUE(torch::equal(t, m4({14.5, 0, 0, -14.5, 0, 14.5, 0, 0, 0, 0, 0, 0, 14.5, 0, 0, 0}))) << t;
  // density 0.5 -> 16..9: alpha = (16+...+9)/8 = 12.5.
  auto h = ternary_topk(d1(), 0.5);
  EXPECT_TRUE(torch::equal(h, m4({12.5, 0, 0, -12.5, 0, 12.5, 0, 0, -12.5, 12.5, 0, -12.5, 12.5, 0, 0, 12.5}))) << h;
  // density 1 keeps every entry: alpha = mean|d| = 8.5, i.e. the paper's 1-bit values.
  EXPECT_TRUE(torch::equal(ternary_topk(d1(), 1.0), 8.5 * torch::sign(d1())));
}

TEST(Ternary, ZerosStayZeroAndAlphaIsRoundedToFp16) {
  // 14 entries of |4| and two zeros: unlike sign(0) = +1 of the 1-bit scheme, a 0 stays 0
  // and alpha averages the nonzero kept entries only (56 / 14 = 4).
  auto d3 = m4({-4, 4, -4, 4, 4, -4, 4, -4, -4, -4, 4, 4, 0, 0, -4, 4});
  EXPECT_TRUE(torch::equal(ternary_topk(d3, 1.0), d3));
  // Ties at the cut kept in index order (as the TIES trim): density 0.5 keeps entries 0..7.
  auto half = ternary_topk(d3, 0.5);
  EXPECT_TRUE(torch::equal(half.reshape({-1}).narrow(0, 0, 8), d3.reshape({-1}).narrow(0, 0, 8)));
  EXPECT_EQ((half.reshape({-1}).narrow(0, 8, 8) != 0).sum().item<int64_t>(), 0);
  // mean of 0.1 and 0.2 = 0.15, stored as fp16 0.1500244140625.
  auto small = torch::tensor({0.1f, -0.2f, 0.01f, 0.0f});
  auto s = ternary_topk(small, 0.5);
  float alpha = static_cast<float>(c10::Half(0.15f));
  EXPECT_TRUE(torch::equal(s, torch::tensor({alpha, -alpha, 0.f, 0.f}))) << s;
  EXPECT_TRUE(torch::equal(ternary_topk(torch::zeros({3, 3}), 0.5), torch::zeros({3, 3})));  // all zero: alpha 0
}

TEST(Ternary, TwoBitCodesLayoutAndRoundTrip) {
  auto t = ternary_topk(d1(), 0.25);  // + 0 0 - / 0 + 0 0 / 0 0 0 0 / + 0 0 0
  auto c = pack_ternary(t);
  ASSERT_EQ(c.codes.numel(), 4);  // ceil(16/4)
  // element e -> bits 2*(e%4) of byte e/4; 1 = +, 2 = -: byte 0 = 1 | 2<<6 = 129, byte 1 = 1<<2 = 4.
  EXPECT_EQ(c.codes[0].item<uint8_t>(), 129);
  EXPECT_EQ(c.codes[1].item<uint8_t>(), 4);
  EXPECT_EQ(c.codes[2].item<uint8_t>(), 0);
  EXPECT_EQ(c.codes[3].item<uint8_t>(), 1);
  EXPECT_EQ(c.alpha.item<float>(), 14.5f);
  EXPECT_TRUE(torch::equal(unpack_ternary(c, {4, 4}, torch::kCPU, "t"), t));
  // A length that is not a multiple of 4, on random data.
  torch::manual_seed(3);
  auto r = ternary_topk(torch::randn({7, 9}), 0.3);
  auto rc = pack_ternary(r);
  EXPECT_EQ(rc.codes.numel(), (63 + 3) / 4);
  EXPECT_TRUE(torch::equal(unpack_ternary(rc, {7, 9}, torch::kCPU, "r"), r));
  EXPECT_EQ((r != 0).sum().item<int64_t>(), 18);  // floor(0.3 * 63)
  // Code 3 is corrupt.
  rc.codes[0] = 3;
  EXPECT_NE(error_of([&] { unpack_ternary(rc, {7, 9}, torch::kCPU, "x.codes"); }).find("x.codes"), std::string::npos);
}

TEST(Ternary, CompressionSpecParsing) {
  auto c = parse_compression("attention", "k");
  EXPECT_EQ(c.position, Position::Attention);
  EXPECT_EQ(c.scheme, Scheme::Sign);
  EXPECT_EQ(parse_compression("mlp:sign", "k"), Compression(Position::Mlp));
  auto t = parse_compression("linear:ternary=0.2", "k");
  EXPECT_EQ(t.scheme, Scheme::Ternary);
  EXPECT_EQ(t.position, Position::Linear);
  EXPECT_EQ(t.density, 0.2);
  EXPECT_EQ(parse_compression("mlp:ternary", "k").density, 0.1);  // default
  EXPECT_EQ(compression_name(t), "linear:ternary=0.2");
  EXPECT_EQ(compression_name(Compression(Position::Mlp)), "mlp");
  EXPECT_EQ(parse_compression(compression_name(parse_compression("attention:ternary=0.05", "k")), "k"),
            parse_compression("attention:ternary=0.05", "k"));
  EXPECT_NE(parse_compression("mlp:ternary=0.2", "k"), parse_compression("mlp:ternary=0.3", "k"));
  auto msg = error_of([] { parse_compression("mlp:ternery", "--compress math=mlp:ternery"); });
  EXPECT_NE(msg.find("--compress math=mlp:ternery"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'ternary'"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { parse_compression("mlp:ternary=1.5", "k"); }).find("(0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { parse_compression("mlp:ternary=abc", "k"); }).find("(0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { parse_compression("mlp:sign=0.2", "k"); }).find("takes no value"), std::string::npos);
  EXPECT_NE(error_of([] { parse_compression("none:ternary", "k"); }).find("compresses nothing"), std::string::npos);
  EXPECT_NE(error_of([] { parse_compression("mpl:ternary", "k"); }).find("did you mean 'mlp'"), std::string::npos);
}

TEST(Ternary, StorageAccountingIsTwoBitsPerEntryPlusAlpha) {
  TensorShape q{"model.layers.0.self_attn.q_proj.weight", {4096, 4096}};
  TensorShape up{"model.layers.0.mlp.up_proj.weight", {11008, 4096}};
  auto tern = parse_compression("attention:ternary=0.1", "k");
  EXPECT_EQ(tensor_bytes(q, tern, 2), 4096u * 4096u / 4u + 2u);   // 2 bits + fp16 alpha
  EXPECT_EQ(tensor_bytes(q, Position::Attention, 2), 4096u * 4096u / 8u + 2u);  // 1 bit (unchanged)
  EXPECT_EQ(tensor_bytes(up, tern, 2), 11008u * 4096u * 2u);      // outside the position: fp16
  EXPECT_EQ(compressed_matrix_bytes(tern, 9), 3u + 2u);            // ceil(9/4) + 2
  // `bitmerge storage`'s report labels and sums the assignment.
  StorageOptions o;
  o.experts = {"math"};
  o.assignments = {{{"math", tern}}};
  auto r = storage_report("x", {q, up}, o);
  bool found = false;
  for (auto& row : r.rows)
    if (row.variant == "  same, base not counted") {
      EXPECT_EQ(row.bytes, 4096u * 4096u / 4u + 2u + 11008u * 4096u * 2u);
      found = true;
    }
  EXPECT_TRUE(found);
  EXPECT_NE(r.to_markdown().find("math=attention:ternary=0.1"), std::string::npos);
}

class TernaryModels : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("ternary");
    cfg = test::tiny_config();
    test::write_tiny_model(dir + "/base", cfg, test::random_tensors(1));
    test::write_tiny_model(dir + "/expert", cfg, test::random_tensors(2, 0.1, test::random_tensors(1)));
    base = Checkpoint::open(dir + "/base");
    expert = Checkpoint::open(dir + "/expert");
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  std::string dir;
  ModelConfig cfg;
  std::shared_ptr<Checkpoint> base, expert;
};

TEST_F(TernaryModels, PackedFileRoundTripAndSize) {
  auto comp = parse_compression("linear:ternary=0.3", "k");
  std::string out = dir + "/tv.safetensors";
  auto sum = write_packed_task_vector(*base, *expert, comp, "math", out);
  EXPECT_GT(sum.packed_tensors, 0);
  auto src = open_packed_task_vector(out, *base);
  EXPECT_EQ(src->compression(), comp);
  uint64_t codes_bytes = 0;
  SafetensorsFile f(out);
  EXPECT_EQ(f.metadata().at("scheme"), "ternary");
  for (auto& n : base->names()) {
    auto bf = base->get(n).to(torch::kFloat32);
    auto delta = expert->get(n).to(torch::kFloat32) - bf;
    Delta d = src->delta(n, bf);
    EXPECT_FALSE(d.is_packed);
    if (compressed_at(Position::Linear, n, delta.dim())) {
      EXPECT_TRUE(torch::equal(d.dense, ternary_topk(delta, 0.3))) << n;
      ASSERT_NE(f.find(n + ".codes"), nullptr) << n;
      EXPECT_EQ(f.find(n + ".signs"), nullptr) << n;
      codes_bytes += f.find(n + ".codes")->nbytes;
      EXPECT_EQ(static_cast<uint64_t>(f.find(n + ".codes")->nbytes), (delta.numel() + 3) / 4);
    } else {
      EXPECT_TRUE(torch::equal(d.dense, delta)) << n;
    }
  }
  EXPECT_GT(codes_bytes, 0u);
  // The file's compression must match --compress when both are given.
  MergeSpec s;
  s.method = "task_arithmetic";
  s.base = dir + "/base";
  s.experts = {{"math", out, Compression(Position::Linear)}};
  auto msg = error_of([&] { Merger m(s); });
  EXPECT_NE(msg.find("linear:ternary=0.3"), std::string::npos) << msg;
  s.experts[0].compress = comp;
  EXPECT_NO_THROW(Merger m(s));
}

TEST_F(TernaryModels, MergeCompressesOnTheFlyAsTheFileDoes) {
  // --compress math=attention:ternary=0.25 with task_arithmetic lambda 1 and one expert
  // = base + T(delta) on the attention projections, base + delta elsewhere; equal to
  // merging the packed file.
  MergeSpec s;
  s.method = "task_arithmetic";
  s.base = dir + "/base";
  s.experts = {{"math", dir + "/expert", std::nullopt}};
  apply_compress_arg(s, "math=attention:ternary=0.25");
  auto fly = merge_in_memory(s);
  int covered = 0;
  for (auto& n : base->names()) {
    auto b = base->get(n).to(torch::kFloat32);
    auto delta = expert->get(n).to(torch::kFloat32) - b;
    bool c = compressed_at(Position::Attention, n, delta.dim());
    covered += c;
    auto want = b + (c ? ternary_topk(delta, 0.25) : delta);
    EXPECT_TRUE(torch::equal(fly[n], want)) << n;
  }
  EXPECT_GT(covered, 0);
  write_packed_task_vector(*base, *expert, parse_compression("attention:ternary=0.25", "k"), "math",
                           dir + "/tv.safetensors");
  MergeSpec p = s;
  p.experts = {{"math", dir + "/tv.safetensors", std::nullopt}};
  auto from_file = merge_in_memory(p);
  for (auto& n : base->names()) EXPECT_TRUE(torch::equal(fly[n], from_file[n])) << n;
  // Provenance names the scheme.
  Merger m(s);
  EXPECT_NE(m.provenance_json().find("attention:ternary=0.25"), std::string::npos);
  // Every method accepts ternary experts (dense deltas): TIES of two.
  MergeSpec t = s;
  t.method = "ties";
  t.experts.push_back({"code", dir + "/expert", parse_compression("mlp:ternary=0.5", "k")});
  EXPECT_EQ(merge_in_memory(t).size(), base->names().size());
}
