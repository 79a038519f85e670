// End to end through the real CLI (bitmerge run, backend "model") on a tiny
// random LLaMA family written by transformers: experts built with the merging
// library, evaluated by the tasks' driver on the engine; Routing and
// 1bit-Merging route items with a trained router and combine the groups.
#include <gtest/gtest.h>

#include <set>

#include "harness/core/fileio.hpp"
#include "harness/report/results.hpp"
#include "tests/runner/helpers.hpp"

TEST(ModelBackend, TinyFamilyThroughTheCli) {
  const char* bin = std::getenv("BITMERGE_BIN");
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  const char* data = std::getenv("BITMERGE_DATA_DIR");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (BITMERGE_BIN)";
  ASSERT_TRUE(py && data) << "ctest sets BITMERGE_TEST_PYTHON and BITMERGE_DATA_DIR";
  std::string tmp = bmtest::make_tmpdir("model");
  auto mk = bmtest::make_tiny_llama_family(tmp, py, data);
  ASSERT_EQ(mk.rc, 0) << mk.out;
  bmtest::write(tmp + "/exp.toml", "name = \"tiny\"\nfamily = \"fam.toml\"\nresults_dir = \"" + tmp +
                                       "/results\"\nbenchmarks = [\"mmlu\", \"gsm8k\"]\n" + R"(
[eval]
limit = 4
max_new_tokens = 8
batch_size = 4
[router]
layer = 1
hidden = 16
epochs = 5
train_per_domain = 20
[[variants]]
name = "Chat"
group = "Finetuned"
kind = "expert"
expert = "chat"
[[variants]]
name = "1bit-Math"
group = "Compressed experts"
kind = "compressed"
expert = "math"
position = "attention"
[[variants]]
name = "TIES"
group = "Merging methods"
kind = "merge"
method = "ties"
params = { density = 0.5, lambda = 1.0 }
[[variants]]
name = "Routing"
group = "Routing"
kind = "routing"
[[variants]]
name = "1bit-Merging"
group = "Merging methods"
kind = "onebit_merging"
compress = { chat = "mlp", math = "attention", code = "attention" }
)");
  auto r = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/exp.toml");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = bm::report::load_results(tmp + "/results/results.json");
  ASSERT_EQ(j["cells"].size(), 10u);
  for (auto& c : j["cells"]) {
    SCOPED_TRACE(c.dump());
    ASSERT_EQ(c["status"], "done");
    EXPECT_EQ(c["n_items"], 4);
    EXPECT_GE(c["score"].get<double>(), 0.0);
    EXPECT_LE(c["score"].get<double>(), 100.0);
    if (c["variant"] == "Routing" || c["variant"] == "1bit-Merging") {
      ASSERT_TRUE(c["extra"].contains("router_accuracy"));
      int64_t routed = 0;
      for (auto& [k, n] : c["extra"]["routed_items"].items()) routed += n.get<int64_t>();
      EXPECT_EQ(routed, 4) << "every item routed to exactly one expert";
    }
  }
  EXPECT_TRUE(bm::file_exists(tmp + "/results/router") );
  EXPECT_NE(r.out.find("routed bank holds"), std::string::npos) << "routed variants use the in-memory bank";
  EXPECT_NE(r.out.find("(weights rebuilt in place)"), std::string::npos) << r.out;
  // The bank and the per-route merge from disk give the same cells (scores and every sample).
  auto disk = bmtest::run_cmd("BITMERGE_ROUTED_BANK=0 " + std::string(bin) + " run " + tmp + "/exp.toml --results-dir " +
                              tmp + "/results-disk");
  ASSERT_EQ(disk.rc, 0) << disk.out;
  EXPECT_EQ(disk.out.find("routed bank holds"), std::string::npos);
  auto jd = bm::report::load_results(tmp + "/results-disk/results.json");
  int compared = 0;
  for (auto& c : j["cells"]) {
    if (c["variant"] != "Routing" && c["variant"] != "1bit-Merging") continue;
    for (auto& d : jd["cells"])
      if (d["variant"] == c["variant"] && d["benchmark"] == c["benchmark"]) {
        EXPECT_EQ(c["score"], d["score"]) << c["variant"] << " " << c["benchmark"];
        const std::string key = c["key"].get<std::string>();
        ASSERT_EQ(key, d["key"].get<std::string>());
        auto sb = nlohmann::json::parse(bm::read_text_file(tmp + "/results/cells/" + key + ".samples.json"));
        auto sd = nlohmann::json::parse(bm::read_text_file(tmp + "/results-disk/cells/" + key + ".samples.json"));
        ASSERT_EQ(sb.size(), 4u);
        EXPECT_EQ(sb, sd) << "log-likelihoods and generations identical: " << c["variant"] << " " << c["benchmark"];
        ++compared;
      }
  }
  EXPECT_EQ(compared, 4);
  EXPECT_EQ(j["provenance"]["libraries"]["torch"].get<std::string>().empty(), false);
  // Rerun: everything cached.
  auto again = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/exp.toml");
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_NE(again.out.find("10 cells, 10 cached, 0 evaluated"), std::string::npos) << again.out;
}
