// The replica zoo end to end (issue 15): the LLaMA-2-7B family's four repos are
// served by the local hub mimic (tests/fetch/hub_server.py, meta-llama gated as
// on the hub); `bitmerge run --fetch` downloads them (sha256-verified) into an
// empty $BITMERGE_MODELS_DIR and runs every variant kind (expert, 1-bit
// expert, TIES, trained router, 1bit-Merging) over tests/zoo/zoo-llama7b.toml,
// then `bitmerge table` renders the table.
#define ZOO_WORK "zoo_e2e_test"
#include <csignal>

#include "tests/zoo/zoo_util.hpp"

namespace {
const char* kToken = "zoo-token-42";
}

class ZooHub : public Zoo {
 protected:
  static std::string hub_, pid_, endpoint_;
  static void SetUpTestSuite() {
    char cwd[4096];
    ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
    work_ = std::string(cwd) + "/" + ZOO_WORK;
    fresh_dir(work_);
    hub_ = work_ + "/hub";
    auto r = make_zoo(hub_, " --hub-layout --repos meta-llama/Llama-2-7b-hf,meta-llama/Llama-2-7b-chat-hf,"
                            "TIGER-Lab/MAmmoTH-7B,mrm8488/llama-2-coder-7b");
    ASSERT_EQ(r.rc, 0) << r.out;
    const std::string port = work_ + "/port";
    auto s = sh(q(env("BITMERGE_TEST_PYTHON")) + " " + q(env("BITMERGE_SOURCE_DIR") + "/tests/fetch/hub_server.py") +
                " --data-root " + q(work_) + " --hub-root " + q(hub_) + " --port-file " + q(port) + " --log " +
                q(work_ + "/hub.log") + " --token " + kToken + " --gated-org meta-llama > /dev/null 2>&1 & echo $!");
    ASSERT_EQ(s.rc, 0) << s.out;
    pid_ = s.out.substr(0, s.out.find('\n'));
    for (int i = 0; i < 200 && !bm::file_exists(port); ++i) usleep(50000);
    ASSERT_TRUE(bm::file_exists(port)) << "hub_server.py did not start";
    endpoint_ = "http://127.0.0.1:" + bm::read_text_file(port);
  }
  static void TearDownTestSuite() {
    if (!pid_.empty()) ::kill(std::stoi(pid_), SIGTERM);
  }
  static std::string run_env(const std::string& models, bool token) {
    return "env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN HF_ENDPOINT=" + endpoint_ + " BITMERGE_MODELS_DIR=" + q(models) +
           (token ? std::string(" HF_TOKEN=") + kToken : "") + " ";
  }
};
std::string ZooHub::hub_, ZooHub::pid_, ZooHub::endpoint_;

// A gated repo without a token: one line that says to set HF_TOKEN, nothing
// left in the models dir.
TEST_F(ZooHub, GatedRepoWithoutTokenFailsInOneLine) {
  const std::string models = work_ + "/models-notoken";
  auto r = sh(run_env(models, false) + bin() + " fetch meta-llama/Llama-2-7b-hf " + q(models + "/Llama-2-7b-hf"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("meta-llama/Llama-2-7b-hf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("set HF_TOKEN"), std::string::npos) << r.out;
  EXPECT_FALSE(bm::file_exists(models + "/Llama-2-7b-hf/config.json"));
  // Not gated: fetched without a token, byte for byte.
  auto ok = sh(run_env(models, false) + bin() + " fetch TIGER-Lab/MAmmoTH-7B " + q(models + "/MAmmoTH-7B"));
  ASSERT_EQ(ok.rc, 0) << ok.out;
  auto cmp = sh("cmp " + q(models + "/MAmmoTH-7B/pytorch_model-00003-of-00003.bin") + " " +
                q(hub_ + "/TIGER-Lab/MAmmoTH-7B/pytorch_model-00003-of-00003.bin"));
  EXPECT_EQ(cmp.rc, 0) << cmp.out;
}

TEST_F(ZooHub, Llama7bFamilyEndToEnd) {
  const std::string models = work_ + "/models", res = work_ + "/results";
  const std::string exp = env("BITMERGE_SOURCE_DIR") + "/tests/zoo/zoo-llama7b.toml";
  auto r = sh(run_env(models, true) + bin() + " run " + q(exp) + " --fetch --results-dir " + q(res));
  ASSERT_EQ(r.rc, 0) << r.out.substr(r.out.size() > 4000 ? r.out.size() - 4000 : 0);
  EXPECT_NE(r.out.find("14 cells, 0 cached, 14 evaluated, 0 missing"), std::string::npos)
      << r.out.substr(r.out.size() > 2000 ? r.out.size() - 2000 : 0);
  // The fetch took the safetensors of meta-llama (the .bin copies are not needed) and every .bin shard of the others.
  EXPECT_TRUE(bm::file_exists(models + "/Llama-2-7b-hf/model-00002-of-00002.safetensors"));
  EXPECT_TRUE(bm::file_exists(models + "/MAmmoTH-7B/pytorch_model-00003-of-00003.bin"));
  EXPECT_TRUE(bm::file_exists(models + "/llama-2-coder-7b/tokenizer.json"));
  auto j = json::parse(bm::read_text_file(res + "/results.json"));
  auto dec = j["provenance"]["checkpoint_decisions"];
  ASSERT_TRUE(dec.is_object()) << j["provenance"].dump(1);
  EXPECT_NE(dec["math"].dump().find("rows 32000..32000 are dropped"), std::string::npos) << dec.dump(1);
  EXPECT_NE(dec["code"].dump().find("tokenizer.json only"), std::string::npos) << dec.dump(1);
  EXPECT_NE(dec["chat"].dump().find("ignored: generation is greedy"), std::string::npos) << dec.dump(1);
  // BOS as lm-eval (issue 15 item 5): [eval] add_bos unset, so the base's
  // tokenizer_config.json (add_bos_token: true) decides, recorded with its source.
  EXPECT_EQ(j["provenance"]["add_bos"]["value"], true) << j["provenance"].dump(1);
  EXPECT_EQ(j["provenance"]["add_bos"]["source"], models + "/Llama-2-7b-hf/tokenizer_config.json add_bos_token");
  // Per-expert chat formats (item 4): each expert cell under its family template,
  // routed cells under the routed map, the base and merges under the lm-eval prompt.
  std::map<std::string, std::string> want = {{"Base", "lm-eval"}, {"Math", "alpaca"}, {"Code", "mrm8488-coder"},
                                             {"1bit-Math", "alpaca"}, {"TIES-Merging", "lm-eval"}};
  size_t routed = 0;
  for (auto& c : j["cells"]) {
    const std::string v = c["variant"], tmpl = c["extra"]["template"];
    if (want.count(v)) EXPECT_EQ(tmpl, want[v]) << v << " " << c["benchmark"];
    if (v == "Routing" || v == "1bit-Merging") {
      EXPECT_EQ(tmpl.rfind("routed(", 0), 0u) << v << " " << tmpl;
      EXPECT_NE(tmpl.find("math:alpaca"), std::string::npos) << tmpl;
      ++routed;
    }
  }
  EXPECT_EQ(routed, 4u);
  // Every cell has a number (the Code expert evaluated with the base's tokenizer).
  auto t = sh(bin() + " table " + q(res + "/results.json") + " --format md");
  ASSERT_EQ(t.rc, 0) << t.out;
  for (const char* v : {"Base", "Math", "Code", "1bit-Math", "TIES-Merging", "Routing", "1bit-Merging"})
    EXPECT_NE(t.out.find(v), std::string::npos) << v << "\n" << t.out;
}
