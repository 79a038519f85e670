// The replica zoo (issue 15), every replica through the CLI: `bitmerge
// inspect` and `eval --limit 2` on each of the twelve (the quirk tests are
// test_zoo.cpp).
#define ZOO_WORK "zoo_cli_test"
#include "tests/zoo/zoo_util.hpp"

TEST_F(Zoo, InspectEveryReplica) {
  for (auto& [id, base] : kRepos) {
    auto r = sh(bin() + " inspect --model " + q(dir(local(id))));
    EXPECT_EQ(r.rc, 0) << id << "\n" << r.out;
    EXPECT_NE(r.out.find("embed"), std::string::npos) << id << "\n" << r.out;
  }
}

// Text evaluation of every replica (tokenizer.json-only ones with the base's
// tokenizer.model); without --tokenizer-from they fail with one line.
TEST_F(Zoo, EvalEveryReplica) {
  for (auto& [id, base] : kRepos) {
    const std::string d = dir(local(id));
    std::string extra = has(d, "tokenizer.model") ? "" : " --tokenizer-from " + q(dir(base));
    const std::string out = work_ + "/eval-" + local(id) + ".json";
    auto r = sh(bin() + " eval --model " + q(d) + " --tasks mmlu,gsm8k --limit 2 --max-new-tokens 6 --output " + q(out) +
                extra);
    ASSERT_EQ(r.rc, 0) << id << "\n" << r.out;
    auto j = json::parse(bm::read_text_file(out));
    EXPECT_EQ(j["tasks"]["mmlu"]["headline"]["n"], 2) << id;
    EXPECT_EQ(j["tasks"]["gsm8k"]["headline"]["n"], 2) << id;
    const std::string desc = j["model"]["description"];
    EXPECT_NE(desc.find("generation=greedy"), std::string::npos) << desc;
    if (!extra.empty()) EXPECT_NE(desc.find("ships tokenizer.json only"), std::string::npos) << desc;
    if (local(id) == "llama-2-coder-7b") {
      auto bad = sh(bin() + " eval --model " + q(d) + " --tasks mmlu --limit 1 --output " + q(out + ".no"));
      EXPECT_EQ(bad.rc, 2) << bad.out;
      EXPECT_NE(bad.out.find("tokenizer.json only"), std::string::npos) << bad.out;
      EXPECT_FALSE(bm::file_exists(out + ".no"));
    }
  }
}
