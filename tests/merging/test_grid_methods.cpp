// The added merge methods (della, della_linear, breadcrumbs, breadcrumbs_ties)
// and the ternary compression scheme through an experiment grid: `bitmerge run`
// (backend "model") on a tiny random LLaMA family, as TIES and 1-bit experts are
// (tests/runner/model_backend_test.cpp).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "harness/core/fileio.hpp"
#include "harness/report/results.hpp"
#include "tests/runner/helpers.hpp"

namespace {

const char* kVariants = R"(
[eval]
limit = 2
max_new_tokens = 4
batch_size = 2
[router]
layer = 1
hidden = 16
epochs = 5
train_per_domain = 20
[[variants]]
name = "DELLA"
group = "Merging methods"
kind = "merge"
method = "della"
params = { density = 0.5, epsilon = 0.1, seed = 3 }
[[variants]]
name = "DELLA linear"
group = "Merging methods"
kind = "merge"
method = "della_linear"
params = { density = 0.6, epsilon = 0.2, lambda = 0.5 }
[[variants]]
name = "Breadcrumbs"
group = "Merging methods"
kind = "merge"
method = "breadcrumbs"
params = { density = 0.5, gamma = 0.05, lambda = 0.7 }
[[variants]]
name = "Breadcrumbs TIES"
group = "Merging methods"
kind = "merge"
method = "breadcrumbs_ties"
params = { density = 0.5, gamma = 0.01 }
[[variants]]
name = "1bit-Math"
group = "Compressed experts"
kind = "compressed"
expert = "math"
position = "attention"
[[variants]]
name = "Ternary-Math"
group = "Compressed experts"
kind = "compressed"
expert = "math"
position = "attention:ternary=0.1"
[[variants]]
name = "TA of ternary experts"
group = "Merging methods"
kind = "merge"
method = "task_arithmetic"
compress = { chat = "mlp:ternary=0.2", math = "attention:ternary=0.1" }
experts = ["chat", "math"]
)";
const char* kOneBitTernary = R"(
[[variants]]
name = "1bit-Merging ternary"
group = "Merging methods"
kind = "onebit_merging"
compress = { chat = "mlp:ternary=0.2", math = "attention:ternary=0.1", code = "attention" }
)";
}  // namespace

TEST(GridMethods, NewMethodsAndTernaryThroughTheCli) {
  const char* bin = std::getenv("BITMERGE_BIN");
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  const char* data = std::getenv("BITMERGE_DATA_DIR");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (BITMERGE_BIN)";
  ASSERT_TRUE(py && data) << "ctest sets BITMERGE_TEST_PYTHON and BITMERGE_DATA_DIR";
  std::string tmp = bmtest::make_tmpdir("gridmethods");
  auto mk = bmtest::make_tiny_llama_family(tmp, py, data);
  ASSERT_EQ(mk.rc, 0) << mk.out;
  const std::string head =
      "name = \"tiny\"\nfamily = \"fam.toml\"\nresults_dir = \"" + tmp + "/results\"\nbenchmarks = [\"mmlu\"]\n";
  bmtest::write(tmp + "/exp.toml", head + kVariants + kOneBitTernary);
  auto r = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/exp.toml");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = bm::report::load_results(tmp + "/results/results.json");
  ASSERT_EQ(j["cells"].size(), 8u);
  std::set<std::string> keys;
  for (auto& c : j["cells"]) {
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(c["status"], "done");
    EXPECT_EQ(c["n_items"], 2);
    keys.insert(c["key"].get<std::string>());
  }
  EXPECT_EQ(keys.size(), 8u) << "each method / scheme is its own cell";
  std::map<std::string, nlohmann::json> var;
  for (auto& v : j["variants"]) var[v["name"].get<std::string>()] = v;
  EXPECT_EQ(var["DELLA"]["method"], "della");
  EXPECT_EQ(var["Breadcrumbs TIES"]["method"], "breadcrumbs_ties");
  EXPECT_EQ(var["Ternary-Math"]["position"], "attention:ternary=0.1");
  // Storage: the ternary expert stores 2 bits per attention entry instead of 1.
  // Attention entries: 2 layers x (q 32x32 + k 16x32 + v 16x32 + o 32x32) = 6144 -> 768 bytes more.
  EXPECT_EQ(var["Ternary-Math"]["storage_bytes"].get<int64_t>() - var["1bit-Math"]["storage_bytes"].get<int64_t>(),
            6144 / 8);

  // 1bit-Merging with ternary experts: the in-memory routed bank and the per-route
  // merge from disk give the same samples.
  bmtest::write(tmp + "/onebit.toml", "name = \"tiny\"\nfamily = \"fam.toml\"\nresults_dir = \"" + tmp +
                                          "/results-disk\"\nbenchmarks = [\"mmlu\"]\n" + kVariants + kOneBitTernary);
  auto disk = bmtest::run_cmd("BITMERGE_ROUTED_BANK=0 " + std::string(bin) + " run " + tmp + "/onebit.toml");
  ASSERT_EQ(disk.rc, 0) << disk.out;
  EXPECT_NE(r.out.find("routed bank holds"), std::string::npos) << r.out;
  auto jd = bm::report::load_results(tmp + "/results-disk/results.json");
  int compared = 0;
  for (auto& c : j["cells"])
    for (auto& d : jd["cells"])
      if (c["variant"] == "1bit-Merging ternary" && d["variant"] == c["variant"]) {
        const std::string key = c["key"].get<std::string>();
        ASSERT_EQ(key, d["key"].get<std::string>());
        EXPECT_EQ(bm::read_text_file(tmp + "/results/cells/" + key + ".samples.json"),
                  bm::read_text_file(tmp + "/results-disk/cells/" + key + ".samples.json"));
        ++compared;
      }
  EXPECT_EQ(compared, 1);

  // Bad input in the grid: one line naming the key, nothing run.
  bmtest::write(tmp + "/bad1.toml", head + "[[variants]]\nname = \"D\"\nkind = \"merge\"\nmethod = \"dela\"\n");
  auto b1 = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/bad1.toml");
  EXPECT_EQ(b1.rc, 2) << b1.out;
  EXPECT_NE(b1.out.find("did you mean 'della'"), std::string::npos) << b1.out;
  bmtest::write(tmp + "/bad2.toml", head + "[[variants]]\nname = \"T\"\nkind = \"compressed\"\nexpert = \"math\"\n"
                                           "position = \"attention:ternary=2\"\n");
  auto b2 = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/bad2.toml");
  EXPECT_EQ(b2.rc, 2) << b2.out;
  EXPECT_NE(b2.out.find("variants.T.position"), std::string::npos) << b2.out;
  EXPECT_NE(b2.out.find("(0, 1]"), std::string::npos) << b2.out;
  std::system(("rm -rf " + tmp).c_str());
}
