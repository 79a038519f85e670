// The bench scripts' random models take their shapes from the program
// (`bitmerge inspect --shape`, the presets of merging/storage.cpp) instead of
// a table of their own (issue 17): the verb gives the real models' sizes, and
// bench/gpu/make_random_model.py reads them through it. Needs $BITMERGE_BIN
// and $BITMERGE_TEST_PYTHON.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Out {
  int rc = 0;
  std::string text;
};

Out run(const std::string& cmd) {
  Out o;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) o.text.append(buf.data(), n);
  int st = pclose(p);
  o.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

json shape(const std::string& args) {
  Out o = run(env("BITMERGE_BIN") + " inspect --shape " + args);
  EXPECT_EQ(o.rc, 0) << o.text;
  return json::parse(o.text);
}

}  // namespace

TEST(BenchShapes, InspectShapeGivesTheRealModelsSizes) {
  // Parameter counts of the released checkpoints (Llama-2-7b-hf, -13b-hf, Mistral-7B-v0.1).
  json l7 = shape("llama2-7b");
  EXPECT_EQ(l7["parameters"], 6738415616LL);
  EXPECT_EQ(l7["tensors"].size(), 291u);
  EXPECT_EQ(l7["config"]["model_type"], "llama");
  EXPECT_EQ(l7["config"]["intermediate_size"], 11008);
  EXPECT_EQ(shape("llama2-13b")["parameters"], 13015864320LL);
  json m7 = shape("mistral-7b");
  EXPECT_EQ(m7["parameters"], 7241732096LL);
  EXPECT_EQ(m7["config"]["model_type"], "mistral");
  EXPECT_EQ(m7["config"]["sliding_window"], 4096);
  EXPECT_EQ(m7["tensors"][2], json::parse(R"(["model.layers.0.self_attn.k_proj.weight", [1024, 4096]])"));
  // --layers and --set: fewer layers, toy widths (head_dim follows hidden / heads).
  json t = shape("llama2-7b --layers 2 --set hidden_size=64 --set num_attention_heads=4 --set num_key_value_heads=2");
  EXPECT_EQ(t["config"]["num_hidden_layers"], 2);
  EXPECT_EQ(t["config"]["head_dim"], 16);
  EXPECT_EQ(t["tensors"].size(), 2u * 9 + 3);
  EXPECT_EQ(t["tensors"][2], json::parse(R"(["model.layers.0.self_attn.k_proj.weight", [32, 64]])"));
}

TEST(BenchShapes, BadShapeArgumentsAreOneLineErrors) {
  const std::string bin = env("BITMERGE_BIN");
  Out o = run(bin + " inspect --shape llama7b");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.text.find("--shape llama7b"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("did you mean 'llama2-7b'"), std::string::npos) << o.text;
  o = run(bin + " inspect --shape llama2-7b --set hiden_size=64");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.text.find("did you mean 'hidden_size'"), std::string::npos) << o.text;
  o = run(bin + " inspect --shape llama2-7b --set hidden_size=6x");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.text.find("integer"), std::string::npos) << o.text;
  o = run(bin + " inspect --shape llama2-7b --set num_attention_heads=5");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.text.find("divide"), std::string::npos) << o.text;
  EXPECT_EQ(o.text.find('\n'), o.text.size() - 1) << "one line: " << o.text;
}

TEST(BenchShapes, MakeRandomModelReadsItsShapesFromTheProgram) {
  // The rows the script's own table held before (hidden, layers, heads, kv heads,
  // intermediate, vocab, sliding window): the program must give the same.
  const std::string code =
      "import json, sys; sys.path.insert(0, sys.argv[1]); import make_random_model as m; "
      "print(json.dumps({k: m.shape_row(k) for k in sorted(m.SHAPES)}))";
  Out o = run("BITMERGE_BIN=" + env("BITMERGE_BIN") + " " + env("BITMERGE_TEST_PYTHON") + " -c '" + code + "' " +
              env("BITMERGE_SOURCE_DIR") + "/bench/gpu");
  ASSERT_EQ(o.rc, 0) << o.text;
  json got = json::parse(o.text);
  json want = json::parse(R"({"llama7b": [4096, 32, 32, 32, 11008, 32000, null],
                              "llama13b": [5120, 40, 40, 40, 13824, 32000, null],
                              "mistral7b": [4096, 32, 32, 8, 14336, 32000, 4096],
                              "tiny": [64, 2, 4, 4, 176, 32000, null]})");
  EXPECT_EQ(got, want);
  // A binary that is not there: a clear message, not a traceback.
  Out bad = run(env("BITMERGE_TEST_PYTHON") + " " + env("BITMERGE_SOURCE_DIR") +
                "/bench/gpu/make_random_model.py /tmp/bm_no_model --shape tiny --tokenizer " +
                env("BITMERGE_DATA_DIR") + "/tokenizers/llama2/tokenizer.model --bin /nonexistent");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.text.find("--bin /nonexistent"), std::string::npos) << bad.text;
}

TEST(BenchShapes, SuiteLimitSelfTestHoldsItsHandComputedCases) {
  // bench/gpu/suite_limit.py (the suite's physical limit, bench/RESULTS.md): KV bytes per token of the
  // three shapes, their weights, the 13B decode step of the engine log and hand-computed scoring and
  // generation limits, with the shapes read from this binary.
  Out o = run(env("BITMERGE_TEST_PYTHON") + " " + env("BITMERGE_SOURCE_DIR") + "/bench/gpu/suite_limit.py --self-test --bin " +
              env("BITMERGE_BIN"));
  ASSERT_EQ(o.rc, 0) << o.text;
  EXPECT_NE(o.text.find("self-test passed"), std::string::npos) << o.text;
  // A bad --measured key is a one-line error naming the option.
  Out bad = run(env("BITMERGE_TEST_PYTHON") + " " + env("BITMERGE_SOURCE_DIR") +
                "/bench/gpu/suite_limit.py --shape llama7b --measured mmlu=1,nosuch=2 --bin " + env("BITMERGE_BIN"));
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.text.find("--measured: unknown task nosuch"), std::string::npos) << bad.text;
}
