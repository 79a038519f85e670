// Python as the oracle (tests/io/io_oracle.py, run with BITMERGE_TEST_PYTHON):
// files written by safetensors / torch.save / PEFT / transformers must read
// back exactly; a model dir written by write_model_dir must load in
// transformers with logits identical to the original's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"
#include "tests/io/io_test_util.hpp"

namespace bm {
namespace {
using json = nlohmann::json;

std::string oracle_script() {
  const char* src = std::getenv("BITMERGE_SOURCE_DIR");
  return std::string(src ? src : BITMERGE_SOURCE_DIR) + "/tests/io/io_oracle.py";
}

class PythonOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    python_ = iotest::test_python();
    if (python_.empty()) return;
    root_ = iotest::temp_dir("oracle");
    std::string log;
    int rc = iotest::run("'" + python_ + "' '" + oracle_script() + "' make '" + root_ + "/ref'", &log);
    if (rc != 0) {
      error_ = "io_oracle.py make failed (rc " + std::to_string(rc) + "):\n" + log;
      return;
    }
    ref_ = root_ + "/ref";
  }
  void SetUp() override {
    if (python_.empty()) GTEST_SKIP() << "BITMERGE_TEST_PYTHON not set: no Python oracle";
    ASSERT_TRUE(error_.empty()) << error_;
  }

  // The tensors the oracle dumped for `which`, in its order.
  static std::vector<std::pair<std::string, torch::Tensor>> expected(const std::string& which) {
    std::string d = ref_ + "/expect/" + which;
    json idx = json::parse(read_text_file(d + "/index.json"));
    static const std::map<std::string, torch::Dtype> dt = {
        {"float32", torch::kFloat32}, {"float16", torch::kFloat16}, {"bfloat16", torch::kBFloat16},
        {"int64", torch::kInt64},     {"bool", torch::kBool}};
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (size_t i = 0; i < idx.size(); ++i) {
      std::string bytes = iotest::read_raw(d + "/" + std::to_string(i) + ".raw");
      auto t = torch::empty(idx[i]["shape"].get<std::vector<int64_t>>(),
                            torch::TensorOptions().dtype(dt.at(idx[i]["dtype"].get<std::string>())));
      EXPECT_EQ(bytes.size(), t.nbytes()) << idx[i]["name"];
      std::memcpy(t.data_ptr(), bytes.data(), std::min<size_t>(bytes.size(), t.nbytes()));
      out.emplace_back(idx[i]["name"].get<std::string>(), t);
    }
    return out;
  }

  static void expect_exact(const Checkpoint& ck, const std::string& which) {
    auto want = expected(which);
    ASSERT_EQ(ck.names().size(), want.size()) << which;
    for (auto& [name, t] : want) {
      ASSERT_TRUE(ck.has(name)) << which << ": " << name;
      auto got = ck.get(name);
      EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
      EXPECT_EQ(got.sizes(), t.sizes()) << name;
      EXPECT_TRUE(torch::equal(got, t)) << which << ": " << name;
      EXPECT_EQ(ck.info(name).shape, t.sizes().vec()) << name;
    }
  }

  static torch::Tensor logits_of(const std::string& model_dir) {
    std::string out = root_ + "/logits_" + std::to_string(counter_++) + ".raw";
    std::string log;
    int rc = iotest::run("'" + python_ + "' '" + oracle_script() + "' logits '" + model_dir + "' '" + out + "'", &log);
    EXPECT_EQ(rc, 0) << "transformers could not load " << model_dir << ":\n" << log;
    return raw_f32(out);
  }
  static torch::Tensor raw_f32(const std::string& path) {
    std::string b = iotest::read_raw(path);
    auto t = torch::empty({static_cast<int64_t>(b.size() / 4)});
    std::memcpy(t.data_ptr(), b.data(), b.size());
    return t;
  }

  // Reads `src` with our reader and writes it with write_model_dir.
  static std::string rewrite(const std::string& src, const std::string& tag, uint64_t shard_bytes) {
    auto ck = Checkpoint::open(src);
    ck->validate_against_config();
    std::vector<std::pair<DType, std::vector<int64_t>>> infos;
    for (auto& n : ck->names()) infos.push_back({ck->info(n).dtype, ck->info(n).shape});
    ModelWriteOptions o;
    o.max_shard_bytes = shard_bytes;
    o.provenance_json = "{\"source\": \"" + src + "\"}";
    std::string out = root_ + "/" + tag;
    write_model_dir(out, ck->config(), ck->names(), infos, [&](const std::string& n) { return ck->get(n); }, src, o);
    return out;
  }

  static inline std::string python_, root_, ref_, error_;
  static inline int counter_ = 0;
};

TEST_F(PythonOracle, ShardedSafetensorsFromPython) {
  auto ck = Checkpoint::open(ref_ + "/st_sharded");
  EXPECT_EQ(ck->files().size(), 3u);
  expect_exact(*ck, "st_sharded");
}

TEST_F(PythonOracle, TorchSaveBinPlainDictViewsAndParameters) {
  auto ck = Checkpoint::open(ref_ + "/bin_plain");
  expect_exact(*ck, "bin_plain");
  // Views of one storage point into the same mapped record.
  auto view = ck->get("a.view"), base = ck->get("a.base");
  EXPECT_EQ(static_cast<const char*>(view.data_ptr()) - static_cast<const char*>(base.data_ptr()), 4 * 4);
}

TEST_F(PythonOracle, TorchSaveBinPickleProtocol4) {
  expect_exact(*Checkpoint::open(ref_ + "/bin_proto4"), "bin_plain");
}

TEST_F(PythonOracle, TorchSaveBinOrderedDictStateDict) {
  // model.state_dict() (OrderedDict + _metadata); the RoPE inv_freq buffer is dropped.
  auto ck = Checkpoint::open(ref_ + "/bin_ordered");
  expect_exact(*ck, "bin_ordered");
  EXPECT_FALSE(ck->has("model.layers.0.self_attn.rotary_emb.inv_freq"));
}

TEST_F(PythonOracle, ShardedBinWithIndexEqualsSafetensors) {
  auto bin = Checkpoint::open(ref_ + "/llama_bin");
  EXPECT_EQ(bin->files().size(), 2u);
  expect_exact(*bin, "llama");
  auto st = Checkpoint::open(ref_ + "/llama");
  expect_exact(*st, "llama");
  EXPECT_NE(bin->fingerprint(), st->fingerprint()) << "the fingerprint is of the files (as results.json's): other format, other bits";
  EXPECT_EQ(bin->tensor_bytes(), st->tensor_bytes());
  EXPECT_NO_THROW(bin->validate_against_config());
  EXPECT_EQ(bin->config().head_dim, 8);
}

TEST_F(PythonOracle, PeftLoraFoldsLikeMergeAndUnload) {
  auto base = Checkpoint::open(ref_ + "/llama");
  auto want = expected("lora_merged");
  for (const char* ad : {"lora_st", "lora_bin"}) {
    auto ck = Checkpoint::open_lora(ref_ + "/" + ad, ref_ + "/llama");
    ASSERT_EQ(ck->names().size(), want.size());
    EXPECT_NO_THROW(ck->validate_against_config());
    int changed = 0;
    for (auto& [name, t] : want) {
      auto got = ck->get(name);
      EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
      EXPECT_TRUE(torch::allclose(got, t, 1e-5, 1e-6)) << ad << ": " << name << " max diff "
                                                      << (got - t).abs().max().item<float>();
      bool folded = name.find("q_proj") != std::string::npos || name.find("v_proj") != std::string::npos ||
                    name.find("down_proj") != std::string::npos;
      if (folded) {
        EXPECT_FALSE(torch::equal(got, base->get(name))) << "LoRA did not change " << name;
        ++changed;
      } else {
        EXPECT_TRUE(torch::equal(got, base->get(name))) << "untargeted tensor changed: " << name;
      }
    }
    EXPECT_EQ(changed, 6) << "q, v, down in each of 2 layers";
  }
  // Checkpoint::open on the adapter dir finds its (local) base by itself.
  auto auto_ck = Checkpoint::open(ref_ + "/lora_st");
  EXPECT_TRUE(torch::allclose(auto_ck->get("model.layers.0.self_attn.q_proj.weight"),
                              Checkpoint::open_lora(ref_ + "/lora_st", ref_ + "/llama")
                                  ->get("model.layers.0.self_attn.q_proj.weight")));
}

TEST_F(PythonOracle, KnownLoraFactorsFoldExactly) {
  // A = [[1,0,2,0..],[0,1,-1,0..]], B[0,0]=1, B[1,1]=2, B[5,0]=-3; alpha/r = 6/2 = 3.
  auto ck = Checkpoint::open_lora(ref_ + "/lora_known", ref_ + "/llama");
  auto base = Checkpoint::open(ref_ + "/llama");
  const std::string n = "model.layers.1.self_attn.o_proj.weight";
  auto d = ck->get(n) - base->get(n);
  auto want = torch::zeros({32, 32});
  want[0][0] = 3, want[0][2] = 6;     // 3 * 1 * A[0]
  want[1][1] = 6, want[1][2] = -6;    // 3 * 2 * A[1]
  want[5][0] = -9, want[5][2] = -18;  // 3 * -3 * A[0]
  EXPECT_TRUE(torch::allclose(d, want, 0, 1e-5)) << d.slice(0, 0, 6).slice(1, 0, 3);
  EXPECT_TRUE(torch::equal(ck->get("model.layers.0.self_attn.o_proj.weight"), base->get("model.layers.0.self_attn.o_proj.weight")));
  EXPECT_NE(ck->fingerprint(), base->fingerprint());
  EXPECT_EQ(ck->files().back(), ref_ + "/lora_known/adapter_model.safetensors");
}

TEST_F(PythonOracle, LoraAgainstWrongBaseIsAnError) {
  try {
    Checkpoint::open_lora(ref_ + "/lora_st", ref_ + "/st_sharded");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("does not have"), std::string::npos) << m;
    EXPECT_NE(m.find("adapter_model.safetensors"), std::string::npos) << m;
  }
}

TEST_F(PythonOracle, TransformersLoadsWhatWeWriteWithIdenticalLogits) {
  auto ref = raw_f32(ref_ + "/llama_logits.raw");
  ASSERT_EQ(ref.numel(), 2 * 8 * 64);
  // safetensors in, sharded safetensors out (forces the index path in transformers).
  auto out1 = rewrite(ref_ + "/llama", "out_from_st", 20000);
  ASSERT_TRUE(file_exists(out1 + "/model.safetensors.index.json"));
  EXPECT_TRUE(file_exists(out1 + "/generation_config.json"));
  EXPECT_TRUE(torch::equal(logits_of(out1), ref)) << "logits differ after our read + write";
  // sharded .bin in, single safetensors out.
  auto out2 = rewrite(ref_ + "/llama_bin", "out_from_bin", 5ull << 30);
  ASSERT_TRUE(file_exists(out2 + "/model.safetensors"));
  EXPECT_TRUE(torch::equal(logits_of(out2), ref)) << "logits differ after .bin read + write";
}

}  // namespace
}  // namespace bm
