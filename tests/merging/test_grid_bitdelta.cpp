// Scheme bitdelta through an experiment grid (`bitmerge run`, backend "model")
// on the tiny random LLaMA family of test_grid_methods.cpp. Its own program:
// the fit (200 steps on a 32000-token vocabulary) takes about two minutes on 2 cores.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "harness/core/fileio.hpp"
#include "harness/report/results.hpp"
#include "tests/runner/helpers.hpp"

// Scheme bitdelta through the grid: the runner fits the scales on the expert's
// corpus/<domain>.jsonl, caches the packed file under <results_dir>/bitdelta/
// (a second run fits nothing), and counts 1 bit per entry as sign; a family
// without a corpus is a one-line error.
TEST(GridMethods, BitDeltaThroughTheCli) {
  const char* bin = std::getenv("BITMERGE_BIN");
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  const char* data = std::getenv("BITMERGE_DATA_DIR");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (BITMERGE_BIN)";
  ASSERT_TRUE(py && data) << "ctest sets BITMERGE_TEST_PYTHON and BITMERGE_DATA_DIR";
  std::string tmp = bmtest::make_tmpdir("gridbitdelta");
  auto mk = bmtest::make_tiny_llama_family(tmp, py, data);
  ASSERT_EQ(mk.rc, 0) << mk.out;
  // Data dir: the shared MMLU (linked, not copied) and a math corpus for the calibration.
  bm::make_dirs(tmp + "/data/corpus");
  ASSERT_EQ(bmtest::run_cmd("ln -s " + std::string(data) + "/mmlu " + tmp + "/data/mmlu").rc, 0);
  std::string corpus;
  for (int i = 0; i < 300; ++i)
    corpus += "{\"prompt\":\"Question: what is " + std::to_string(i) + " + 7?\\nAnswer:\",\"completion\":\" " +
              std::to_string(i + 7) + "\"}\n";
  bmtest::write(tmp + "/data/corpus/math.jsonl", corpus);
  bmtest::write(tmp + "/famc.toml", "data_dir = \"" + tmp + "/data\"\n" + std::string(bmtest::kTinyLlamaFamily));
  const std::string variants =
      "[eval]\nlimit = 2\nmax_new_tokens = 4\nbatch_size = 2\n"
      "[[variants]]\nname = \"1bit-Math\"\nkind = \"compressed\"\nexpert = \"math\"\nposition = \"attention\"\n"
      "[[variants]]\nname = \"BitDelta-Math\"\nkind = \"compressed\"\nexpert = \"math\"\nposition = \"attention:bitdelta\"\n";
  bmtest::write(tmp + "/exp.toml", "name = \"tiny\"\nfamily = \"famc.toml\"\nresults_dir = \"" + tmp +
                                       "/results\"\nbenchmarks = [\"mmlu\"]\n" + variants);
  auto r = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/exp.toml");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("bitdelta math attention: logit MSE"), std::string::npos) << r.out;
  auto files = bm::list_dir(tmp + "/results/bitdelta");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].rfind("math-attention-", 0), 0u) << files[0];
  auto j = bm::report::load_results(tmp + "/results/results.json");
  ASSERT_EQ(j["cells"].size(), 2u);
  std::map<std::string, nlohmann::json> var;
  for (auto& v : j["variants"]) var[v["name"].get<std::string>()] = v;
  EXPECT_EQ(var["BitDelta-Math"]["position"], "attention:bitdelta");
  EXPECT_EQ(var["BitDelta-Math"]["storage_bytes"], var["1bit-Math"]["storage_bytes"]) << "1 bit + fp16 alpha, as sign";
  std::set<std::string> keys;
  for (auto& c : j["cells"]) {
    EXPECT_EQ(c["status"], "done") << c.dump();
    keys.insert(c["key"].get<std::string>());
  }
  EXPECT_EQ(keys.size(), 2u);
  // A fresh results dir reuses nothing, but the same one reuses the fitted file: no second fit.
  std::system(("rm -rf " + tmp + "/results/cells").c_str());
  auto r2 = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/exp.toml");
  ASSERT_EQ(r2.rc, 0) << r2.out;
  EXPECT_EQ(r2.out.find("logit MSE"), std::string::npos) << r2.out;
  // No corpus: one line naming the missing calibration file.
  bmtest::write(tmp + "/nocorpus.toml", "name = \"tiny\"\nfamily = \"fam.toml\"\nresults_dir = \"" + tmp +
                                            "/results-nc\"\nbenchmarks = [\"mmlu\"]\n" + variants);
  auto b = bmtest::run_cmd(std::string(bin) + " run " + tmp + "/nocorpus.toml");
  EXPECT_NE(b.rc, 0) << b.out;
  EXPECT_NE(b.out.find("corpus/math.jsonl, which is missing"), std::string::npos) << b.out;
  std::system(("rm -rf " + tmp).c_str());
}
