// `bitmerge requests` (bench/gpu's workload for the HF peer) dumps exactly the
// LanguageModel requests that the eval driver issues: compared against a
// recording model run through bm::evaluate on the real data. Needs the built
// CLI ($BITMERGE_BIN) and $BITMERGE_DATA_DIR.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/fileio.hpp"
#include "harness/models/tokenizer.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/io.hpp"
#include "tests/common/tmpdir.hpp"

using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string temp_dir() { return bm::testutil::temp_dir("benchgpu"); }

// Records every request (as the JSON line `bitmerge requests` writes, minus "task") and answers trivially.
class Recorder : public bm::LanguageModel {
 public:
  std::vector<json> seen;
  std::vector<bm::LoglikelihoodResult> loglikelihood(const std::vector<bm::LoglikelihoodRequest>& reqs) override {
    for (const auto& r : reqs)
      seen.push_back({{"type", "loglikelihood"}, {"context", r.context}, {"continuation", r.continuation}});
    return std::vector<bm::LoglikelihoodResult>(reqs.size(), bm::LoglikelihoodResult{-1.0, false, 1});
  }
  std::vector<bm::GenerateResult> generate(const std::vector<bm::GenerateRequest>& reqs) override {
    for (const auto& r : reqs)
      seen.push_back({{"type", "generate"}, {"prompt", r.prompt}, {"until", r.until}, {"max_new_tokens", r.max_new_tokens}});
    return std::vector<bm::GenerateResult>(reqs.size(), bm::GenerateResult{"", {}, 0});
  }
};

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  for (const auto& line : bm::split_lines(bm::read_text_file(path)))
    if (!bm::trim(line).empty()) out.push_back(json::parse(line));
  return out;
}

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

}  // namespace

class RequestsVerb : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = env("BITMERGE_BIN");
    data_ = env("BITMERGE_DATA_DIR");
    if (bin_.empty() || !bm::file_exists(bin_)) GTEST_SKIP() << "bitmerge CLI not built (ninja bitmerge)";
    if (data_.empty() || !bm::file_exists(data_ + "/gsm8k/test.jsonl")) GTEST_SKIP() << "no BITMERGE_DATA_DIR";
    dir_ = temp_dir();
  }
  std::string bin_, data_, dir_;
};

TEST_F(RequestsVerb, SameRequestsAsTheEvalDriver) {
  const std::vector<std::string> tasks = {"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math"};
  Recorder rec;
  bm::EvalOptions eo;
  eo.data_dir = data_;
  eo.limit = 3;
  eo.progress = false;
  bm::evaluate(rec, tasks, eo);
  ASSERT_FALSE(rec.seen.empty());

  const std::string out = dir_ + "/req.jsonl";
  std::string cmd = bin_ + " requests --tasks mmlu,hellaswag,truthfulqa,gsm8k,math --limit 3 --data-dir '" + data_ +
                    "' --output " + out + " 2>" + dir_ + "/err.txt";
  ASSERT_EQ(run(cmd), 0) << cmd << "\n" << bm::read_text_file(dir_ + "/err.txt");
  auto got = read_jsonl(out);
  ASSERT_EQ(got.size(), rec.seen.size());
  std::vector<std::string> order;
  for (size_t i = 0; i < got.size(); ++i) {
    json g = got[i];
    ASSERT_TRUE(g.contains("task"));
    if (order.empty() || order.back() != g["task"]) order.push_back(g["task"]);
    g.erase("task");
    EXPECT_EQ(g, rec.seen[i]) << "request " << i;
  }
  EXPECT_EQ(order, tasks);  // task by task, in the --tasks order
  size_t gsm = 0;
  for (const auto& g : got)
    if (g["task"] == "gsm8k") {
      ++gsm;
      EXPECT_EQ(g["max_new_tokens"], 256);  // lm-eval's gsm8k default
    }
  EXPECT_EQ(gsm, 3u);
}

TEST_F(RequestsVerb, CodeTasksTokenIdsAndBudget) {
  const std::string out = dir_ + "/code.jsonl";
  const std::string tokdir = data_ + "/tokenizers/llama2";
  std::string cmd = bin_ + " requests --tasks humaneval,mbpp,mmlu --limit 2 --max-new-tokens 40 --tokenizer " + tokdir +
                    " --data-dir '" + data_ + "' --output " + out + " 2>" + dir_ + "/err.txt";
  ASSERT_EQ(run(cmd), 0) << cmd << "\n" << bm::read_text_file(dir_ + "/err.txt");
  auto got = read_jsonl(out);
  auto tok = bm::Tokenizer::load(tokdir + "/tokenizer.model");
  size_t gen = 0, ll = 0;
  for (const auto& g : got) {
    if (g["type"] == "generate") {
      ++gen;
      EXPECT_EQ(g["max_new_tokens"], 40);
      EXPECT_FALSE(g["until"].empty()) << g["task"];  // lm-eval stop sequences
      EXPECT_EQ(g["prompt_ids"].get<std::vector<int64_t>>(), tok->encode(g["prompt"].get<std::string>(), false));
    } else {
      ++ll;
      // lm-eval's split: context ids + continuation ids = the whole string's ids, continuation non-empty.
      auto c = g["context_ids"].get<std::vector<int64_t>>();
      auto k = g["continuation_ids"].get<std::vector<int64_t>>();
      EXPECT_FALSE(k.empty());
      c.insert(c.end(), k.begin(), k.end());
      EXPECT_EQ(c, tok->encode(g["context"].get<std::string>() + g["continuation"].get<std::string>(), false));
    }
  }
  EXPECT_EQ(gen, 4u);  // 2 humaneval + 2 mbpp
  EXPECT_EQ(ll, 8u);   // 2 mmlu items x 4 choices
}

TEST_F(RequestsVerb, UnknownTaskFailsWithoutOutput) {
  const std::string out = dir_ + "/bad.jsonl";
  std::string cmd = bin_ + " requests --tasks mmlu,gsm8kk --data-dir '" + data_ + "' --output " + out + " 2>" + dir_ +
                    "/err.txt";
  EXPECT_NE(run(cmd), 0);
  EXPECT_NE(bm::read_text_file(dir_ + "/err.txt").find("gsm8kk"), std::string::npos);
  EXPECT_FALSE(bm::file_exists(out));
}
