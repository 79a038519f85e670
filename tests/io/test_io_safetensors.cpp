// Writer round trips (single / sharded, fp32 / fp16 / bf16, metadata),
// zero-copy views, fingerprints, write_model_dir.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/fingerprint.hpp"
#include "tests/io/io_test_util.hpp"

namespace bm {
namespace {
using json = nlohmann::json;
using iotest::temp_dir;

struct Named {
  std::string name;
  torch::Tensor t;
};

std::vector<Named> sample_tensors(torch::Dtype dt) {
  torch::manual_seed(7);
  return {{"a.weight", torch::randn({8, 5}).to(dt)},
          {"b.bias", torch::randn({3}).to(dt)},
          {"c.scalar", torch::randn({}).to(dt)},
          {"d.empty", torch::empty({0, 4}, dt)},
          {"e.big", torch::randn({40, 33}).to(dt)}};
}

void write_single(const std::string& path, const std::vector<Named>& ts, const std::map<std::string, std::string>& meta) {
  SafetensorsWriter w(path, meta);
  for (auto& n : ts) w.declare(n.name, from_torch_dtype(n.t.scalar_type()), n.t.sizes().vec());
  for (auto& n : ts) {
    auto c = n.t.contiguous();
    // Two chunks per tensor: the writer accepts a tensor in pieces.
    size_t half = c.nbytes() / 2;
    w.write(n.name, c.data_ptr(), half);
    w.write(n.name, static_cast<const char*>(c.data_ptr()) + half, c.nbytes() - half);
  }
  w.finish();
}

class RoundTrip : public ::testing::TestWithParam<torch::Dtype> {};

TEST_P(RoundTrip, SingleFileBitExactWithMetadata) {
  auto dir = temp_dir("single");
  auto ts = sample_tensors(GetParam());
  write_single(dir + "/x.safetensors", ts, {{"who", "bitmerge"}, {"k", "v"}});
  SafetensorsFile f(dir + "/x.safetensors");
  EXPECT_EQ(f.metadata().at("who"), "bitmerge");
  EXPECT_EQ(f.metadata().at("k"), "v");
  auto ck = Checkpoint::open(dir + "/x.safetensors");
  ASSERT_EQ(ck->names().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ck->names()[i], ts[i].name) << "names keep the written (offset) order";
    auto got = ck->get(ts[i].name);
    EXPECT_EQ(got.scalar_type(), GetParam());
    EXPECT_EQ(got.sizes(), ts[i].t.sizes());
    EXPECT_TRUE(torch::equal(got, ts[i].t)) << ts[i].name;
    EXPECT_EQ(ck->info(ts[i].name).nbytes, ts[i].t.nbytes());
  }
  // Data is 8-byte aligned (header padded), so views are zero-copy.
  auto a = ck->get("a.weight");
  auto a2 = ck->get("a.weight");
  EXPECT_EQ(a.data_ptr(), a2.data_ptr()) << "two gets are views on the same mapped bytes";
}

TEST_P(RoundTrip, ShardedWithIndexAndMetadata) {
  auto dir = temp_dir("sharded");
  auto ts = sample_tensors(GetParam());
  const uint64_t elem = torch::elementSize(GetParam());
  {
    ShardedSafetensorsWriter w(dir, /*max_shard_bytes=*/50 * elem, {{"format", "pt"}, {"run", "42"}});
    for (auto& n : ts) w.declare(n.name, from_torch_dtype(n.t.scalar_type()), n.t.sizes().vec());
    for (auto& n : ts) w.write(n.name, n.t.contiguous().data_ptr(), n.t.nbytes());
    w.finish();
  }
  ASSERT_TRUE(file_exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  json idx = json::parse(read_text_file(dir + "/model.safetensors.index.json"));
  uint64_t total = 0;
  for (auto& n : ts) total += n.t.nbytes();
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), total);
  std::set<std::string> shards;
  for (auto& [k, v] : idx["weight_map"].items()) shards.insert(v.get<std::string>());
  EXPECT_GE(shards.size(), 2u);
  for (auto& s : shards) {
    EXPECT_TRUE(s.rfind("model-0000", 0) == 0 && s.find("-of-0000") != std::string::npos) << s;
    SafetensorsFile f(dir + "/" + s);
    EXPECT_EQ(f.metadata().at("run"), "42");
    EXPECT_EQ(f.metadata().at("format"), "pt");
  }
  auto ck = Checkpoint::open(dir);
  EXPECT_EQ(ck->files().size(), shards.size());
  ASSERT_EQ(ck->names().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ck->names()[i], ts[i].name);
    EXPECT_TRUE(torch::equal(ck->get(ts[i].name), ts[i].t)) << ts[i].name;
  }
  EXPECT_EQ(ck->tensor_bytes(), total);
}

TEST_P(RoundTrip, OneShardWhenItFits) {
  auto dir = temp_dir("oneshard");
  auto ts = sample_tensors(GetParam());
  ShardedSafetensorsWriter w(dir, 1 << 20);
  for (auto& n : ts) w.declare(n.name, from_torch_dtype(n.t.scalar_type()), n.t.sizes().vec());
  for (auto& n : ts) w.write(n.name, n.t.contiguous().data_ptr(), n.t.nbytes());
  w.finish();
  EXPECT_TRUE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/model.safetensors.index.json"));
  auto ck = Checkpoint::open(dir);
  for (auto& n : ts) EXPECT_TRUE(torch::equal(ck->get(n.name), n.t));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RoundTrip, ::testing::Values(torch::kFloat32, torch::kFloat16, torch::kBFloat16),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(Checkpoint, ViewOutlivesCheckpoint) {
  auto dir = temp_dir("outlive");
  auto ts = sample_tensors(torch::kFloat32);
  write_single(dir + "/model.safetensors", ts, {});
  torch::Tensor kept;
  {
    auto ck = Checkpoint::open(dir);
    kept = ck->get("e.big");
  }
  // The deleter holds the mapping: reading after the Checkpoint is gone is valid.
  EXPECT_TRUE(torch::equal(kept, ts[4].t));
}

TEST(Checkpoint, FingerprintStableAndSensitiveToFilesAndData) {
  auto d1 = temp_dir("fp1"), d2 = temp_dir("fp2"), d3 = temp_dir("fp3");
  auto ts = sample_tensors(torch::kFloat16);
  write_single(d1 + "/model.safetensors", ts, {});
  {
    ShardedSafetensorsWriter w(d2, 64);
    for (auto& n : ts) w.declare(n.name, from_torch_dtype(n.t.scalar_type()), n.t.sizes().vec());
    for (auto& n : ts) w.write(n.name, n.t.contiguous().data_ptr(), n.t.nbytes());
    w.finish();
  }
  auto f1 = Checkpoint::open(d1)->fingerprint();
  EXPECT_EQ(f1.size(), 64u);
  EXPECT_EQ(f1, Checkpoint::open(d1)->fingerprint());
  // The one fingerprint (harness/models/fingerprint.hpp) is of the files, as
  // results.json's: the same weights resharded are other bits.
  EXPECT_EQ(f1, bm::model_fingerprint(d1)) << "Checkpoint::fingerprint is the model fingerprint of its directory";
  EXPECT_NE(f1, Checkpoint::open(d2)->fingerprint()) << "single file vs shards: other files";
  auto changed = ts;
  changed[4].t = ts[4].t.clone();
  changed[4].t.view(-1)[0] += 1;
  write_single(d3 + "/model.safetensors", changed, {});
  EXPECT_NE(f1, Checkpoint::open(d3)->fingerprint());
  auto reshaped = ts;
  reshaped[4].t = ts[4].t.reshape({33, 40});
  write_single(d3 + "/model.safetensors", reshaped, {});
  EXPECT_NE(f1, Checkpoint::open(d3)->fingerprint()) << "shape is part of the fingerprint";
}

// A random tiny LLaMA written with write_model_dir.
std::map<std::string, torch::Tensor> tiny_weights(const ModelConfig& c, torch::Dtype dt) {
  std::map<std::string, torch::Tensor> w;
  torch::manual_seed(3);
  for (auto& n : llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings)) {
    std::vector<int64_t> shape;
    EXPECT_TRUE(Checkpoint::expected_shape(c, n, &shape)) << n;
    w[n] = torch::randn(shape).to(dt);
  }
  return w;
}

void write_tiny(const std::string& out, const ModelConfig& c, const std::map<std::string, torch::Tensor>& w,
                const std::string& tok_dir, const ModelWriteOptions& opts,
                std::function<void(const std::string&)> hook = nullptr) {
  std::vector<std::string> names = llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings);
  std::vector<std::pair<DType, std::vector<int64_t>>> infos;
  for (auto& n : names) infos.push_back({from_torch_dtype(w.at(n).scalar_type()), w.at(n).sizes().vec()});
  write_model_dir(out, c, names, infos,
                  [&](const std::string& n) {
                    if (hook) hook(n);
                    return w.at(n);
                  },
                  tok_dir, opts);
}

TEST(WriteModelDir, WritesHfDirectoryThatReadsBack) {
  auto root = temp_dir("wmd");
  auto tok = root + "/tok";
  make_dirs(tok);
  iotest::write_raw(tok + "/tokenizer.model", std::string("\x00\x01sp-bytes\xff", 12));
  iotest::write_raw(tok + "/tokenizer_config.json", "{\"add_bos_token\": true}");
  iotest::write_raw(tok + "/unrelated.txt", "not copied");
  auto c = iotest::tiny_config();
  c.torch_dtype = "bfloat16";
  auto w = tiny_weights(c, torch::kBFloat16);
  ModelWriteOptions o;
  o.max_shard_bytes = 4096;
  o.provenance_json = "{\"method\": \"ties\"}";
  o.metadata = {{"bitmerge_cell", "abc"}};
  const std::string out = root + "/merged";
  write_tiny(out, c, w, tok, o);

  EXPECT_EQ(iotest::read_raw(out + "/tokenizer.model"), iotest::read_raw(tok + "/tokenizer.model"));
  EXPECT_TRUE(file_exists(out + "/tokenizer_config.json"));
  EXPECT_FALSE(file_exists(out + "/unrelated.txt"));
  EXPECT_EQ(json::parse(read_text_file(out + "/bitmerge_provenance.json"))["method"], "ties");
  EXPECT_TRUE(file_exists(out + "/model.safetensors.index.json"));
  for (auto& e : list_dir(root)) EXPECT_EQ(e.find(".tmp-"), std::string::npos) << "left over: " << e;

  auto ck = Checkpoint::open(out);
  ASSERT_TRUE(ck->has_config());
  EXPECT_EQ(ck->config().hidden_size, c.hidden_size);
  EXPECT_EQ(ck->config().num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(ck->config().torch_dtype, "bfloat16");
  EXPECT_NO_THROW(ck->validate_against_config());
  EXPECT_EQ(ck->names().size(), w.size());
  for (auto& [n, t] : w) EXPECT_TRUE(torch::equal(ck->get(n), t)) << n;
  SafetensorsFile shard(ck->files()[0]);
  EXPECT_EQ(shard.metadata().at("format"), "pt");
  EXPECT_EQ(shard.metadata().at("bitmerge_cell"), "abc");
}

TEST(WriteModelDir, ConvertsDtypeAndReplacesExistingDirectory) {
  auto root = temp_dir("wmd2");
  auto c = iotest::tiny_config();
  auto w32 = tiny_weights(c, torch::kFloat32);
  const std::string out = root + "/m";
  write_tiny(out, c, w32, "", {});
  EXPECT_TRUE(file_exists(out + "/model.safetensors"));
  EXPECT_FALSE(file_exists(out + "/bitmerge_provenance.json"));
  // Declared fp16, produced fp32: stored as fp16.
  std::vector<std::string> names = llama_tensor_names(2, false);
  std::vector<std::pair<DType, std::vector<int64_t>>> infos;
  for (auto& n : names) infos.push_back({DType::F16, w32.at(n).sizes().vec()});
  write_model_dir(out, c, names, infos, [&](const std::string& n) { return w32.at(n); }, "", {});
  auto ck = Checkpoint::open(out);
  for (auto& n : names) {
    EXPECT_EQ(ck->get(n).scalar_type(), torch::kFloat16);
    EXPECT_TRUE(torch::equal(ck->get(n), w32.at(n).to(torch::kFloat16)));
  }
}

TEST(WriteModelDir, FailureLeavesPreviousModelUntouched) {
  auto root = temp_dir("wmd3");
  auto c = iotest::tiny_config();
  auto w = tiny_weights(c, torch::kFloat32);
  const std::string out = root + "/m";
  write_tiny(out, c, w, "", {});
  auto before = Checkpoint::open(out)->fingerprint();
  auto w2 = tiny_weights(c, torch::kFloat32);
  for (auto& [n, t] : w2) t.add_(1);
  EXPECT_THROW(write_tiny(out, c, w2, "", {},
                          [](const std::string& n) {
                            if (n == "model.layers.1.mlp.up_proj.weight") throw Error("simulated failure mid-write");
                          }),
               Error);
  EXPECT_EQ(Checkpoint::open(out)->fingerprint(), before);
  EXPECT_EQ(list_dir(root), std::vector<std::string>{"m"}) << "no temp or backup dirs left over";
  // A produced shape that disagrees with the declaration is refused.
  std::vector<std::string> names = {"x"};
  EXPECT_THROW(write_model_dir(root + "/bad", c, names, {{DType::F32, {2, 2}}},
                               [](const std::string&) { return torch::zeros({3}); }, "", {}),
               Error);
  EXPECT_FALSE(file_exists(root + "/bad"));
}

TEST(Checkpoint, TorchDtypeMapping) {
  for (auto d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                 DType::U8, DType::BOOL})
    EXPECT_EQ(from_torch_dtype(to_torch_dtype(d)), d);
  EXPECT_THROW(from_torch_dtype(torch::kComplexFloat), Error);
}

}  // namespace
}  // namespace bm
