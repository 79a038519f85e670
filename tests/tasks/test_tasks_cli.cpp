// `bitmerge eval` end to end on a tiny random HF Llama (made with transformers
// in the venv) on CPU: results.json and samples.jsonl have what the runner and
// the report need. Needs the built CLI ($BITMERGE_BIN).
#include <gtest/gtest.h>

#include "harness/core/fileio.hpp"
#include "oracle.hpp"
#include "tasks/common/io.hpp"

using nlohmann::json;

TEST(EvalCli, TinyModelEndToEnd) {
  const char* bin = std::getenv("BITMERGE_BIN");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (ninja bitmerge)";
  std::string dir = bmtest::temp_dir("evalcli");
  std::string model = dir + "/tiny";
  json in = {{"out", model}, {"tok", bmtest::data_dir() + "/tokenizers/llama2/tokenizer.model"}};
  bmtest::run_python(bmtest::py_prelude() + R"(
import shutil, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2)
m = LlamaForCausalLM(cfg)
m.save_pretrained(inp['out'], safe_serialization=True)
shutil.copy(inp['tok'], inp['out'] + '/tokenizer.model')
json.dump({}, open(sys.argv[2], 'w'))
)", in, "tiny");
  std::string cmd = std::string(bin) + " eval --model " + model + " --tasks mmlu,hellaswag,truthfulqa,gsm8k,math,humaneval,mbpp --limit 2 --max-new-tokens 6 --data-dir '" +
                    bmtest::data_dir() + "' --output " + dir + "/r.json --samples " + dir + "/s.jsonl --template gsm8k=mergelm 2>" +
                    dir + "/err.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << bm::read_text_file(dir + "/err.txt");
  auto r = json::parse(bm::read_text_file(dir + "/r.json"));
  for (const char* t : {"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "humaneval", "mbpp"}) {
    ASSERT_TRUE(r["tasks"].contains(t)) << t;
    const auto& x = r["tasks"][t];
    EXPECT_EQ(x["n"].get<int>(), 2) << t;
    EXPECT_FALSE(x["version"].get<std::string>().empty());
    EXPECT_EQ(x["data_files"][0]["sha256"].get<std::string>().size(), 64u);
    double v = x["headline"]["value"].get<double>();
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  EXPECT_EQ(r["tasks"]["gsm8k"]["template"], "mergelm");
  EXPECT_EQ(r["tasks"]["mmlu"]["template"], "lm-eval");
  EXPECT_EQ(r["model"]["fingerprint"].get<std::string>().size(), 64u);
  EXPECT_EQ(r["settings"]["add_bos"], false);
  auto lines = bm::split_lines(bm::read_text_file(dir + "/s.jsonl"));
  EXPECT_EQ(lines.size(), 14u);
  // A missing data dir fails before the model is loaded, naming the path.
  std::string bad = std::string(bin) + " eval --model " + model + " --tasks gsm8k --data-dir " + dir +
                    "/nodata --output " + dir + "/x.json 2>" + dir + "/err2.txt";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(bm::read_text_file(dir + "/err2.txt").find(dir + "/nodata/gsm8k/test.jsonl"), std::string::npos);
  EXPECT_FALSE(bm::file_exists(dir + "/x.json"));
}
