// Mini-family trainer: tokenizer training, packing, schedule, loss goes down,
// bitwise determinism with one thread, and HF transformers parity of a saved model.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/models/cpu_numerics.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/train/family.hpp"
#include "harness/train/tokenizer_train.hpp"
#include "harness/train/trainer.hpp"
#include "tasks/synth/synth.hpp"
#include "tests/common/tmpdir.hpp"

namespace fs = std::filesystem;
using namespace bm;
using namespace bm::train;

// As in bitmerge's main(): the CPU numerics are pinned before any tensor op.
[[maybe_unused]] static const bm::CpuNumerics& kPinned = bm::pin_cpu_numerics();

namespace {

struct Fixture {
  std::string dir;
  std::shared_ptr<Tokenizer> tok;
  std::vector<TextExample> examples;
  ModelConfig config;
};

// One tokenizer + corpus shared by every test (training it takes ~1 s).
const Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    x.dir = bm::testutil::temp_dir("mini-train");
    fs::create_directories(x.dir + "/tok");
    synth::SynthConfig sc;
    sc.countries = 12;
    sc.n_test = 8;
    sc.n_train_gsm8k = 100;
    sc.n_train_math = 50;
    sc.pretrain_docs = 200;
    auto d = synth::generate(sc);
    std::vector<std::string> texts = d.pretrain;
    for (auto& e : d.math) texts.push_back(e.prompt + e.completion);
    train_sentencepiece(texts, 400, x.dir + "/tok/tokenizer.model", 1);
    x.tok = Tokenizer::load(x.dir + "/tok/tokenizer.model");
    for (size_t i = 0; i < 120; ++i) x.examples.push_back({d.math[i].prompt, d.math[i].completion});
    x.config.architecture = "LlamaForCausalLM";
    x.config.model_type = "llama";
    x.config.vocab_size = x.tok->vocab_size();
    x.config.hidden_size = 32;
    x.config.intermediate_size = 64;
    x.config.num_hidden_layers = 2;
    x.config.num_attention_heads = 4;
    x.config.num_key_value_heads = 2;
    x.config.head_dim = 8;
    x.config.max_position_embeddings = 256;
    x.config.rms_norm_eps = 1e-5;
    return x;
  }();
  return f;
}

TrainConfig tiny_train(int64_t steps) {
  TrainConfig c;
  c.steps = steps;
  c.batch_size = 4;
  c.seq_len = 128;
  c.lr = 1e-2;
  c.warmup_steps = 3;
  c.seed = 5;
  return c;
}

}  // namespace

TEST(MiniTrain, TokenizerIsLlamaStyle) {
  auto& f = fixture();
  EXPECT_EQ(f.tok->vocab_size(), 400);
  EXPECT_EQ(f.tok->bos_id(), 1);
  EXPECT_EQ(f.tok->eos_id(), 2);
  auto ids = f.tok->encode("x = 123\n    y", false);
  EXPECT_EQ(f.tok->decode(ids), "x = 123\n    y");
  int digits = 0;  // split_digits: each digit its own piece
  for (auto id : ids) {
    std::string p = f.tok->piece(id);
    if (p.rfind("<0x", 0) != 0 && p.find_first_of("0123456789") != std::string::npos) {
      ++digits;
      EXPECT_LE(p.size(), 4u) << p;  // "1" or "\u2581" + "1"
    }
  }
  EXPECT_EQ(digits, 3);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 13), ids.end());  // "\n" is the byte piece <0x0A> (3 + 10)
}

TEST(MiniTrain, PackingWeightsCompletionOnly) {
  auto& f = fixture();
  std::vector<TextExample> ex = {{"Question: 2 + 2?\nAnswer:", " 4"}, {"", "pretraining text"}};
  auto p = pack_examples(*f.tok, ex, 64, false);
  ASSERT_EQ(p.tokens.size(0), 1);
  auto t = p.tokens[0];
  auto w = p.weights[0];
  EXPECT_EQ(t[0].item<int64_t>(), 1);  // BOS
  EXPECT_EQ(w[0].item<float>(), 0.f);
  size_t n_prompt = f.tok->encode(ex[0].prompt, false).size();
  for (size_t i = 1; i <= n_prompt; ++i) EXPECT_EQ(w[int64_t(i)].item<float>(), 0.f) << i;
  EXPECT_EQ(w[int64_t(n_prompt) + 1].item<float>(), 1.f);  // " 4"
  auto full = pack_examples(*f.tok, ex, 64, true);
  EXPECT_GT(full.weights.sum().item<float>(), p.weights.sum().item<float>());
  // the second example has no BOS (every other one), so evaluation contexts without BOS are seen too
  int64_t bos = (p.tokens == 1).sum().item<int64_t>();
  EXPECT_EQ(bos, 1);
  // an over-long example keeps its end: the completion survives truncation
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "Question: 12 + 7?\n";
  auto cut = pack_examples(*f.tok, {{long_prompt, " 19"}}, 32, false);
  EXPECT_EQ(cut.n_truncated, 1);
  ASSERT_EQ(cut.tokens.size(0), 1);
  EXPECT_EQ(cut.tokens[0][31].item<int64_t>(), f.tok->eos_id());
  EXPECT_GE(cut.weights.sum().item<float>(), 2.f);  // " 1" "9" (digits split) + EOS
}

TEST(MiniTrain, WarmupCosineSchedule) {
  TrainConfig c;
  c.steps = 110;
  c.warmup_steps = 10;
  c.lr = 1.0;
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(c, 0), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(c, 9), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(c, 10), 1.0);
  EXPECT_NEAR(lr_at(c, 60), 0.55, 1e-12);
  EXPECT_NEAR(lr_at(c, 110), 0.1, 1e-12);
}

TEST(MiniTrain, LossDecreasesAndRunsAreBitwiseDeterministic) {
  auto& f = fixture();
  at::set_num_threads(1);
  auto data = pack_examples(*f.tok, f.examples, 128, false);
  auto run = [&] {
    auto m = Transformer::random_init(f.config, 3, torch::kCPU, torch::kFloat32);
    auto st = train_model(*m, data, tiny_train(40), "test");
    return std::make_pair(m, st);
  };
  auto [m1, s1] = run();
  auto [m2, s2] = run();
  EXPECT_LT(s1.final_loss, 0.7 * s1.first_loss) << s1.first_loss << " -> " << s1.final_loss;
  EXPECT_EQ(s1.losses, s2.losses);
  for (auto& [name, t] : m1->named_parameters()) EXPECT_TRUE(torch::equal(t, m2->named_parameters().at(name))) << name;
  auto m3 = Transformer::random_init(f.config, 4, torch::kCPU, torch::kFloat32);
  EXPECT_FALSE(torch::equal(m3->named_parameters().at("model.embed_tokens.weight"),
                            m1->named_parameters().at("model.embed_tokens.weight")));
  EXPECT_LT(evaluate_loss(*m1, data, 8), s1.first_loss);
}

TEST(MiniTrain, SavedModelMatchesHfTransformers) {
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  if (!py || !file_exists(py)) GTEST_SKIP() << "BITMERGE_TEST_PYTHON not set";
  auto& f = fixture();
  auto data = pack_examples(*f.tok, f.examples, 128, false);
  auto m = Transformer::random_init(f.config, 9, torch::kCPU, torch::kFloat32);
  train_model(*m, data, tiny_train(10), "parity");
  std::string out = f.dir + "/model";
  save_model(*m, out, f.dir + "/tok", "{}");
  ASSERT_TRUE(file_exists(out + "/config.json"));
  ASSERT_TRUE(file_exists(out + "/tokenizer.model"));
  auto ids = f.tok->encode("Question: Ana has 3 apples. How many?\nAnswer:", true);
  nlohmann::json jids = ids;
  std::string script = f.dir + "/parity.py", result = f.dir + "/logits.json";
  std::ofstream(script) << "import json, sys, torch\n"
                           "from transformers import AutoModelForCausalLM\n"
                           "m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)\n"
                           "m.eval()\n"
                           "ids = torch.tensor([json.loads(sys.argv[2])])\n"
                           "with torch.no_grad():\n"
                           "    lg = m(ids).logits[0]\n"
                           "json.dump(lg.tolist(), open(sys.argv[3], 'w'))\n";
  std::string cmd = std::string(py) + " " + script + " " + out + " '" + jids.dump() + "' " + result + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto j = nlohmann::json::parse(read_text_file(result));
  std::vector<float> flat;
  for (auto& row : j)
    for (auto& v : row) flat.push_back(v.get<float>());
  auto hf = torch::tensor(flat).view({int64_t(ids.size()), -1});
  auto loaded = Transformer::load(out, torch::kCPU, torch::kFloat32);
  torch::NoGradGuard ng;
  auto ours = loaded->forward(torch::tensor(ids, torch::kInt64).unsqueeze(0)).logits[0];
  ASSERT_EQ(ours.sizes(), hf.sizes());
  double diff = (ours - hf).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << "max |logit diff| vs transformers";
  // the loaded model is the trained one (not a re-init)
  auto direct = m->forward(torch::tensor(ids, torch::kInt64).unsqueeze(0)).logits[0];
  EXPECT_TRUE(torch::allclose(direct, ours, 1e-6, 1e-6));
}

TEST(MiniTrain, WorldNamesAndSmallNumbersAreSinglePieces) {
  synth::SynthConfig sc;
  sc.countries = 12;
  sc.n_test = 8;
  sc.n_train_gsm8k = 60;
  sc.n_train_math = 30;
  sc.pretrain_docs = 150;
  auto d = synth::generate(sc);
  std::vector<std::string> texts = d.pretrain;
  for (auto* v : {&d.chat, &d.math})
    for (auto& e : *v) texts.push_back(e.prompt + e.completion);
  std::string path = fixture().dir + "/tok_pieces.model";
  train_sentencepiece(texts, 512, path, 1, d.tokenizer_pieces);
  auto tok = Tokenizer::load(path);
  EXPECT_EQ(tok->vocab_size(), 512);
  const std::string sp = "\xe2\x96\x81";
  // every MMLU test item's question names its country with one piece, and its
  // choices are one piece each
  for (auto& it : d.mmlu_test) {
    std::string country = it.question.substr(it.question.rfind(' ') + 1);
    country.pop_back();  // '?'
    auto ids = tok->encode(it.question, false);
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(tok->piece(ids[ids.size() - 2]), sp + country) << it.question;
    for (auto& c : it.choices) EXPECT_EQ(tok->encode(" " + c, false).size(), 2u) << c;  // dummy prefix + piece
  }
  auto ids = tok->encode("x = 14 + 3 so \\boxed{19} and 123", false);
  std::vector<std::string> pieces;
  for (auto id : ids) pieces.push_back(tok->piece(id));
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), sp + "14"), pieces.end());
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), sp + "3"), pieces.end());
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "19"), pieces.end());
  EXPECT_EQ(std::find(pieces.begin(), pieces.end(), sp + "123"), pieces.end());  // beyond math_max: not whole
  EXPECT_EQ(tok->decode(ids), "x = 14 + 3 so \\boxed{19} and 123");
}

TEST(MiniTrain, FamilyConfigsParseAndKeysTrackSettings) {
  std::string src = BITMERGE_SOURCE_DIR;
  for (auto size : {"nano", "mini"}) {
    auto c = FamilyConfig::from_toml(src + "/configs/mini/" + std::string(size) + ".toml");
    EXPECT_EQ(c.name, size);
    EXPECT_EQ(c.cache_key().size(), 16u);
    auto c2 = c;
    c2.finetune.lr *= 2;
    EXPECT_NE(c.cache_key(), c2.cache_key());
    auto c3 = c;
    c3.generator.seed += 1;
    EXPECT_NE(c.cache_key(), c3.cache_key());
    // the generator settings are feasible (e.g. enough distinct MATH problems)
    // and the whole pieces fit the vocabulary
    synth::SynthData d;
    ASSERT_NO_THROW(d = synth::generate(c.generator)) << size;
    EXPECT_EQ(d.math_test.size(), size_t(c.generator.n_test));
    EXPECT_LE(int64_t(d.tokenizer_pieces.size()) + 256 + 128, c.tokenizer_vocab) << size;
  }
  std::string bad = fixture().dir + "/bad.toml";
  write_file_atomic(bad, "[model]\nhiden_size = 3\n[pretrain]\nsteps = 1\n");
  try {
    FamilyConfig::from_toml(bad);
    FAIL() << "unknown key accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos) << e.what();
  }
}

TEST(MiniTrain, TinyFamilyBuildsLayoutAndReusesCache) {
  FamilyConfig c = FamilyConfig::from_toml(std::string(BITMERGE_SOURCE_DIR) + "/configs/mini/nano.toml");
  c.name = "tiny";
  c.generator.countries = 12;
  c.generator.n_test = 8;
  c.generator.n_train_gsm8k = 60;
  c.generator.n_train_math = 30;
  c.generator.pretrain_docs = 150;
  c.tokenizer_vocab = 512;
  c.model.hidden_size = 32;
  c.model.intermediate_size = 64;
  c.model.num_hidden_layers = 1;
  c.model.head_dim = 8;
  c.pretrain.steps = 4;
  c.pretrain.batch_size = 2;
  c.finetune.steps = 3;
  c.finetune.batch_size = 2;
  c.chat_steps = c.math_steps = c.code_steps = -1;  // the nano per-expert step counts
  BuildOptions o;
  o.out_dir = fixture().dir + "/family";
  o.threads = 1;
  auto s1 = build_family(c, o);
  EXPECT_FALSE(s1.cache_hit);
  for (auto n : {"base", "chat", "math", "code"}) {
    std::string d = o.out_dir + "/models/" + n;
    EXPECT_TRUE(file_exists(d + "/config.json") && file_exists(d + "/model.safetensors") &&
                file_exists(d + "/tokenizer.model"))
        << d;
  }
  for (auto f : {"data/mmlu/test/world_capitals_test.csv", "data/gsm8k/train.jsonl", "data/mbpp/mbpp.jsonl",
                 "family.toml", "family.json", "tokenizer/tokenizer.model"})
    EXPECT_TRUE(file_exists(o.out_dir + "/" + f)) << f;
  // experts differ from the base and from each other (they were fine-tuned)
  auto base = Transformer::load(o.out_dir + "/models/base", torch::kCPU, torch::kFloat32);
  auto chat = Transformer::load(o.out_dir + "/models/chat", torch::kCPU, torch::kFloat32);
  auto& name = "model.layers.0.mlp.down_proj.weight";
  EXPECT_FALSE(torch::equal(base->named_parameters().at(name), chat->named_parameters().at(name)));
  auto stamp = sha256_file(o.out_dir + "/models/chat/model.safetensors");
  auto s2 = build_family(c, o);
  EXPECT_TRUE(s2.cache_hit);
  EXPECT_EQ(s2.key, s1.key);
  EXPECT_EQ(stamp, sha256_file(o.out_dir + "/models/chat/model.safetensors"));
  // experts fine-tuned side by side (threads = 1 on the CPU) are the same bits
  // as fine-tuned one after another
  BuildOptions seq = o;
  seq.out_dir = fixture().dir + "/family-seq";
  seq.parallel_experts = false;
  build_family(c, seq);
  for (auto n : {"base", "chat", "math", "code"}) {
    auto a = Transformer::load(o.out_dir + "/models/" + n, torch::kCPU, torch::kFloat32);
    auto b = Transformer::load(seq.out_dir + "/models/" + n, torch::kCPU, torch::kFloat32);
    for (auto& [pn, t] : a->named_parameters()) ASSERT_TRUE(torch::equal(t, b->named_parameters().at(pn))) << n << " " << pn;
  }
  const std::string base_sha = sha256_file(o.out_dir + "/models/base/model.safetensors");
  c.finetune.steps = 4;  // a changed setting retrains
  auto s3 = build_family(c, o);
  EXPECT_FALSE(s3.cache_hit);
  EXPECT_NE(s3.key, s1.key);
  // ... the experts only: a [finetune] change reuses the saved base, and the
  // experts are the bits a build from scratch gives
  auto meta = nlohmann::json::parse(read_text_file(o.out_dir + "/family.json"));
  EXPECT_TRUE(meta["models"]["base"].value("reused", false));
  EXPECT_EQ(meta["models"]["chat"]["steps"].get<int64_t>(), 4);
  EXPECT_EQ(base_sha, sha256_file(o.out_dir + "/models/base/model.safetensors"));
  EXPECT_NE(stamp, sha256_file(o.out_dir + "/models/chat/model.safetensors"));
  BuildOptions fresh = o;
  fresh.out_dir = fixture().dir + "/family-fresh";
  build_family(c, fresh);
  auto fmeta = nlohmann::json::parse(read_text_file(fresh.out_dir + "/family.json"));
  EXPECT_FALSE(fmeta["models"]["base"].value("reused", false));
  for (auto n : {"base", "chat", "math", "code"})
    EXPECT_EQ(sha256_file(o.out_dir + "/models/" + std::string(n) + "/model.safetensors"),
              sha256_file(fresh.out_dir + "/models/" + std::string(n) + "/model.safetensors"))
        << n;
  {
    // A build that dies after its base (here: the fine-tune's seq_len is refused)
    // leaves a partial record; the next build reuses the base and gives the bits
    // of a build from scratch.
    FamilyConfig bad = c;
    bad.finetune.seq_len = bad.model.max_position_embeddings + 1;
    BuildOptions cut = o;
    cut.out_dir = fixture().dir + "/family-cut";
    EXPECT_THROW(build_family(bad, cut), bm::Error);
    auto pmeta = nlohmann::json::parse(read_text_file(cut.out_dir + "/family.json"));
    EXPECT_FALSE(pmeta.contains("key"));
    EXPECT_TRUE(pmeta.contains("partial"));
    EXPECT_EQ(pmeta["models"]["base"]["sha256"].get<std::string>(), base_sha);
    EXPECT_FALSE(file_exists(cut.out_dir + "/models/chat/model.safetensors"));
    auto s4 = build_family(c, cut);
    EXPECT_FALSE(s4.cache_hit);
    auto rmeta = nlohmann::json::parse(read_text_file(cut.out_dir + "/family.json"));
    EXPECT_TRUE(rmeta["models"]["base"].value("reused", false));
    EXPECT_FALSE(rmeta.contains("partial"));
    EXPECT_EQ(rmeta.value("key", ""), s3.key);
    for (auto n : {"base", "chat", "math", "code"})
      EXPECT_EQ(sha256_file(cut.out_dir + "/models/" + std::string(n) + "/model.safetensors"),
                sha256_file(fresh.out_dir + "/models/" + std::string(n) + "/model.safetensors"))
          << n;
  }
  c.tokenizer_vocab = 300;  // no room for the byte pieces and the whole pieces
  try {
    build_family(c, o);
    FAIL() << "a too small vocabulary was accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.vocab_size"), std::string::npos) << e.what();
  }
}
