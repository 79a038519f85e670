// The mini family must be the same bits on every x86-64 CPU (AMD or Intel,
// with or without AVX-512). A second CPU cannot be had in CI, so the test
// makes this machine behave like other CPUs through the environment variables
// that steer libtorch's CPU dispatch (ATen capability, MKL branch and ISA,
// oneDNN ISA) and asserts that `bitmerge mini build` pins them: the same
// sha256 for base, chat, math and code. Without the pin (native mode) the same
// environment must change the bits, which shows the check can fail.
// Second: a nano family built here (the main job's, or a fresh one) has the
// sha256 recorded in the committed results/mini/family.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "harness/core/fileio.hpp"
#include "tests/runner/helpers.hpp"

namespace {

const char* kModels[] = {"base", "chat", "math", "code"};

std::string bin() {
  const char* b = std::getenv("BITMERGE_BIN");
  return b ? b : "bitmerge";
}

std::map<std::string, std::string> hashes(const std::string& family_json) {
  auto j = nlohmann::json::parse(bm::read_text_file(family_json));
  std::map<std::string, std::string> h;
  for (auto* n : kModels) h[n] = j.at("models").at(n).at("sha256").get<std::string>();
  return h;
}

// nano.toml with a few training steps: every code path of the real build.
std::string tiny_config(const std::string& dir) {
  auto t = toml::parse_file(bmtest::source_dir() + "/configs/mini/nano.toml");
  t["pretrain"].as_table()->insert_or_assign("steps", 8);
  t["pretrain"].as_table()->insert_or_assign("warmup_steps", 2);
  auto* ft = t["finetune"].as_table();
  ft->insert_or_assign("steps", 6);
  ft->insert_or_assign("warmup_steps", 2);
  for (const char* k : {"chat_steps", "math_steps", "code_steps"}) ft->insert_or_assign(k, 6);
  std::ostringstream o;
  o << t;
  std::string p = dir + "/tiny.toml";
  bmtest::write(p, o.str());
  return p;
}

std::string build(const std::string& cfg, const std::string& out, const std::string& env) {
  auto r = bmtest::run_cmd(env + " " + bin() + " mini build --config " + cfg + " --out " + out + " --threads 1 --force");
  EXPECT_EQ(r.rc, 0) << r.out;
  return out + "/family.json";
}

}  // namespace

// What another CPU would pick on its own: AVX-512 or plain kernels, MKL's own
// per-CPU branch, AVX2-only MKL, oneDNN on AVX-512.
const std::string kOtherCpu[] = {
    "ATEN_CPU_CAPABILITY=default MKL_CBWR=AUTO MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX512_CORE",
    "ATEN_CPU_CAPABILITY=avx512 MKL_CBWR=AUTO ONEDNN_MAX_CPU_ISA=ALL",
};

TEST(Reproducible, PinWinsOverTheEnvironmentOfOtherCpus) {
  std::string dir = bmtest::make_tmpdir("repro");
  std::string cfg = tiny_config(dir);
  auto ref = hashes(build(cfg, dir + "/plain", "env -u ATEN_CPU_CAPABILITY -u MKL_CBWR"));
  for (const auto& env : kOtherCpu) {
    auto other = hashes(build(cfg, dir + "/other", "env " + env));
    for (auto* n : kModels) EXPECT_EQ(other[n], ref[n]) << n << " differs under " << env;
  }
  auto j = nlohmann::json::parse(bm::read_text_file(dir + "/plain/family.json"));
  EXPECT_EQ(j.at("cpu_numerics").at("mode"), "portable");
  EXPECT_EQ(j.at("cpu_numerics").at("mkl_cbwr"), "COMPATIBLE");
  EXPECT_EQ(j.at("cpu_numerics").at("onednn"), false);
}

TEST(Reproducible, WithoutThePinTheSameEnvironmentChangesTheBits) {
  std::string dir = bmtest::make_tmpdir("repro-native");
  std::string cfg = tiny_config(dir);
  auto pinned = hashes(build(cfg, dir + "/pinned", "env"));
  auto native = hashes(build(cfg, dir + "/native", "env BITMERGE_CPU_NUMERICS=native " + kOtherCpu[0]));
  EXPECT_NE(native["base"], pinned["base"]) << "the environment did not change unpinned training: the other test "
                                               "would pass without a pin";
  auto j = nlohmann::json::parse(bm::read_text_file(dir + "/native/family.json"));
  EXPECT_EQ(j.at("cpu_numerics").at("mode"), "native");
  // Another pin, another cache key: a native build never passes for a portable one.
  EXPECT_NE(j.at("key"), nlohmann::json::parse(bm::read_text_file(dir + "/pinned/family.json")).at("key"));
}

TEST(Reproducible, NanoFamilyHasTheCommittedHashes) {
  std::string committed = bmtest::source_dir() + "/results/mini/family.json";
  ASSERT_TRUE(bm::file_exists(committed)) << committed << " missing: make regen-mini writes it";
  auto want = nlohmann::json::parse(bm::read_text_file(committed));
  // The main job's family when it was built from the committed settings
  // (CI runs `make` first), else a fresh build (a few CPU-minutes).
  const char* env_dir = std::getenv("BITMERGE_MINI_DIR");
  std::string fam = std::string(env_dir && *env_dir ? env_dir : bmtest::source_dir() + "/mini-nano") + "/family.json";
  bool reuse = false;
  if (bm::file_exists(fam)) {
    auto have = nlohmann::json::parse(bm::read_text_file(fam));
    reuse = have.value("key", "") == want.value("key", "");
  }
  if (!reuse) {
    std::string dir = bmtest::make_tmpdir("repro-nano");
    auto r = bmtest::run_cmd(bin() + " mini build --size nano --out " + dir + "/nano --threads 1");
    ASSERT_EQ(r.rc, 0) << r.out;
    fam = dir + "/nano/family.json";
    ASSERT_EQ(nlohmann::json::parse(bm::read_text_file(fam)).value("key", ""), want.value("key", ""))
        << "configs/mini/nano.toml or the trainer changed since results/mini was made: run make regen-mini";
  }
  auto have = hashes(fam);
  for (auto* n : kModels)
    EXPECT_EQ(have[n], want.at("models").at(n).at("sha256").get<std::string>())
        << n << ": this CPU trained other bits than the committed family (" << fam << ")";
}
