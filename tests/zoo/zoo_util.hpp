// Shared by the zoo tests: runs tests/zoo/make_zoo.py once per program into
// <build>/<ZOO_WORK>/models and drives $BITMERGE_BIN.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/runner/config.hpp"
#include "tests/runner/helpers.hpp"

using json = nlohmann::json;

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

using Cmd = bmtest::CmdResult;
Cmd sh(const std::string& cmd) { return bmtest::run_cmd(cmd); }  // one popen helper (tests/runner/helpers.hpp)
std::string q(const std::string& s) { return "'" + s + "'"; }
// (no std::filesystem: libtorch exports its own copy of those symbols)
void fresh_dir(const std::string& d) {
  auto r = sh("rm -rf " + q(d) + " && mkdir -p " + q(d));
  ASSERT_EQ(r.rc, 0) << r.out;
}
std::string bin() { return q(env("BITMERGE_BIN")); }

// The twelve repos: id, family base's local name.
const std::vector<std::pair<std::string, std::string>> kRepos = {
    {"meta-llama/Llama-2-7b-hf", ""},
    {"meta-llama/Llama-2-7b-chat-hf", "Llama-2-7b-hf"},
    {"TIGER-Lab/MAmmoTH-7B", "Llama-2-7b-hf"},
    {"mrm8488/llama-2-coder-7b", "Llama-2-7b-hf"},
    {"meta-llama/Llama-2-13b-hf", ""},
    {"meta-llama/Llama-2-13b-chat-hf", "Llama-2-13b-hf"},
    {"TIGER-Lab/MAmmoTH-13B", "Llama-2-13b-hf"},
    {"emre/llama-2-13b-code-chat", "Llama-2-13b-hf"},
    {"mistralai/Mistral-7B-v0.1", ""},
    {"mistralai/Mistral-7B-Instruct-v0.1", "Mistral-7B-v0.1"},
    {"TIGER-Lab/MAmmoTH2-7B", "Mistral-7B-v0.1"},
    {"Nondzu/Mistral-7B-codealpaca-lora", "Mistral-7B-v0.1"},
};
std::string local(const std::string& id) { return id.substr(id.find('/') + 1); }

class Zoo : public ::testing::Test {
 protected:
  static std::string root_;  // $BITMERGE_MODELS_DIR of the zoo
  static std::string work_;
  static void SetUpTestSuite() {
    char cwd[4096];
    ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
    work_ = std::string(cwd) + "/" + ZOO_WORK;
    fresh_dir(work_);
    root_ = work_ + "/models";
    auto r = make_zoo(root_, "");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  // tests/zoo/make_zoo.py into `out` (extra: e.g. --hub-layout --repos ...).
  static Cmd make_zoo(const std::string& out, const std::string& extra) {
    return sh(q(env("BITMERGE_TEST_PYTHON")) + " " + q(env("BITMERGE_SOURCE_DIR") + "/tests/zoo/make_zoo.py") + " " +
              q(out) + " --tokenizers " + q(env("BITMERGE_DATA_DIR") + "/tokenizers") + extra);
  }
  static std::string dir(const std::string& name) { return root_ + "/" + name; }
  static std::string base_of(const std::string& name) {
    for (auto& [id, base] : kRepos)
      if (local(id) == name) return base.empty() ? "" : dir(base);
    return "";
  }
};
std::string Zoo::root_;
std::string Zoo::work_;

bool has(const std::string& d, const std::string& f) { return bm::file_exists(d + "/" + f); }
int count_ext(const std::string& d, const std::string& ext) {
  int n = 0;
  for (auto& e : bm::list_dir(d))
    if (e.size() > ext.size() && e.compare(e.size() - ext.size(), ext.size(), ext) == 0) ++n;
  return n;
}
bool contains(const std::vector<std::string>& lines, const std::string& s) {
  for (auto& l : lines)
    if (l.find(s) != std::string::npos) return true;
  return false;
}
std::string joined(const std::vector<std::string>& lines) {
  std::string o;
  for (auto& l : lines) o += l + "\n";
  return o;
}

}  // namespace
