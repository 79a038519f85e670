// Experiment configs: every paper config expands to the expected grid
// (dry-run counts) and bad configs fail with one line naming file and key.
#include <gtest/gtest.h>

#include <map>

#include "harness/core/error.hpp"
#include "harness/runner/config.hpp"
#include "harness/runner/grid.hpp"
#include "harness/runner/storage.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm::runner;

namespace {
std::string exp_path(const std::string& n) { return bmtest::source_dir() + "/configs/experiments/" + n + ".toml"; }

using bmtest::error_of;
}  // namespace

TEST(Configs, PaperGridsHaveTheExpectedCellCounts) {
  // variants x 7 benchmarks
  std::map<std::string, size_t> variants = {{"table1", 12}, {"table2", 10}, {"table3", 10}, {"table4", 10},
                                            {"table5", 12}, {"table6", 12}, {"table7", 7},  {"fig3", 9},
                                            {"fig2", 5},    {"mini-table1", 12}, {"mini-table2", 10},
                                            {"mini-table7", 7}, {"mini-fig3", 9}, {"mini-fig2", 5}};
  for (auto& [name, nv] : variants) {
    SCOPED_TRACE(name);
    Experiment e = load_experiment(exp_path(name));
    EXPECT_EQ(e.variants.size(), nv);
    auto cells = expand_cells(e, false);
    EXPECT_EQ(cells.size(), nv * 7);
    std::set<std::string> keys;
    for (auto& c : cells) keys.insert(c.key);
    EXPECT_EQ(keys.size(), cells.size()) << "cell keys must be unique";
  }
}

TEST(Configs, DryRunOfTable2Lists70CellsWithoutCheckpoints) {
  std::string tmp = bmtest::make_tmpdir("dry");
  auto r = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + exp_path("table2") + " --dry-run --results-dir " +
                           tmp);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("10 model variants x 7 benchmarks = 70 cells (0 cached, 70 to run)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1bit-Merging\thumaneval\ttodo"), std::string::npos);
}

TEST(Configs, FamiliesCarryThePapersCheckpoints) {
  Family f = load_family(bmtest::source_dir() + "/configs/families/mistral-7b.toml");
  EXPECT_EQ(f.base.hf_id, "mistralai/Mistral-7B-v0.1");
  ASSERT_NE(f.expert("code"), nullptr);
  EXPECT_EQ(f.expert("code")->hf_id, "Nondzu/Mistral-7B-codealpaca-lora");
  EXPECT_EQ(f.expert("code")->format, "hf");  // a full merged model despite its name (issue 15)
  EXPECT_EQ(f.expert("chat")->template_name, "mistral-inst");
  ::setenv("BITMERGE_MODELS_DIR", "/ckpt", 1);
  EXPECT_EQ(resolve_model_dir(f, f.base, "/repo"), "/ckpt/Mistral-7B-v0.1");
  ::unsetenv("BITMERGE_MODELS_DIR");
  EXPECT_EQ(resolve_model_dir(f, f.base, "/repo"), "/repo/models/Mistral-7B-v0.1");
}

TEST(Configs, PaperAveragesAreCarried) {
  Experiment e = load_experiment(exp_path("table2"));
  ASSERT_NE(e.variant("1bit-Merging"), nullptr);
  EXPECT_DOUBLE_EQ(e.variant("1bit-Merging")->paper.scores.at("average"), 36.74);
  EXPECT_DOUBLE_EQ(e.variant("Math")->paper.scores.at("average"), 31.52);
  Experiment f3 = load_experiment(exp_path("fig3"));
  EXPECT_DOUBLE_EQ(f3.variant("1bit-Merging")->paper_storage_percent, 66.25);
}

TEST(Configs, UnknownKeyNamesFileKeyAndClosestName) {
  std::string tmp = bmtest::make_tmpdir("cfg");
  std::string p = bmtest::tiny_experiment(tmp, 0, 2, "[eval]\nmax_new_tokns = 5\n");
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("eval.max_new_tokns"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'max_new_tokens'"), std::string::npos) << msg;
}

TEST(Configs, UnknownVariantKeyAndBadValues) {
  std::string tmp = bmtest::make_tmpdir("cfg2");
  bmtest::tiny_family(tmp);
  std::string p = tmp + "/e.toml";
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\n[[variants]]\nname = \"A\"\nkind = \"compressed\"\n"
                   "expert = \"chat\"\npositon = \"mlp\"\n");
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find("variants.A.positon"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'position'"), std::string::npos) << msg;
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\n[[variants]]\nname = \"A\"\nkind = \"compressed\"\n"
                   "expert = \"chat\"\nposition = \"mpl\"\n");
  msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find("variants.A.position"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'mlp'"), std::string::npos) << msg;
}

TEST(Configs, BenchmarksComeFromTheTaskRegistry) {
  // Default: the paper's seven in table order, each routed to its task's domain;
  // any registered benchmark is accepted, an unknown one is refused with a hint.
  std::string tmp = bmtest::make_tmpdir("cfgbench");
  bmtest::tiny_family(tmp);
  std::string p = tmp + "/e.toml";
  const std::string variant = "[[variants]]\nname = \"A\"\nkind = \"base\"\n";
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\n" + variant);
  Experiment e = load_experiment(p);
  EXPECT_EQ(e.benchmarks, (std::vector<std::string>{"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "mbpp", "humaneval"}));
  EXPECT_EQ(e.router.domain_of.at("truthfulqa"), "chat");
  EXPECT_EQ(e.router.domain_of.at("math"), "math");
  EXPECT_EQ(e.router.domain_of.at("humaneval"), "code");
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\nbenchmarks = [\"math500\", \"mbpp_sanitized\"]\n" + variant);
  e = load_experiment(p);
  EXPECT_EQ(e.router.domain_of.at("math500"), "math");
  EXPECT_EQ(e.router.domain_of.at("mbpp_sanitized"), "code");
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\nbenchmarks = [\"gsm8kk\"]\n" + variant);
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find("benchmarks"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'gsm8k'"), std::string::npos) << msg;
}

TEST(Configs, TomlSyntaxErrorGivesTheLine) {
  std::string tmp = bmtest::make_tmpdir("cfg3");
  std::string p = tmp + "/bad.toml";
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\nbenchmarks = [\"mmlu\",\n[[variants]]\n");
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find(p + ":4:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TOML parse error"), std::string::npos) << msg;
}

TEST(Configs, VariantNamingAnExpertTheFamilyLacks) {
  std::string tmp = bmtest::make_tmpdir("cfg4");
  bmtest::tiny_family(tmp);
  std::string p = tmp + "/e.toml";
  bmtest::write(p, "name = \"x\"\nfamily = \"fam.toml\"\n[[variants]]\nname = \"A\"\nkind = \"expert\"\n"
                   "expert = \"maths\"\n");
  std::string msg = error_of([&] { load_experiment(p); });
  EXPECT_NE(msg.find("variants.A.expert"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not in family tiny"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'math'"), std::string::npos) << msg;
}

TEST(Configs, MissingCheckpointSaysWhereAndHow) {
  Experiment e = load_experiment(exp_path("table2"));
  ::setenv("BITMERGE_MODELS_DIR", "/nonexistent-models", 1);
  std::string msg = error_of([&] { check_checkpoints(e); });
  ::unsetenv("BITMERGE_MODELS_DIR");
  EXPECT_NE(msg.find("/nonexistent-models/Llama-2-7b-hf/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("meta-llama/Llama-2-7b-hf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("BITMERGE_MODELS_DIR"), std::string::npos) << msg;
}

// The published shapes have one home (merging/storage.cpp family_preset): a family's
// [shape] names its preset, keys beside it override, and a bad preset is one line.
TEST(Configs, FamilyShapeComesFromItsPreset) {
  Family f13 = load_family(bmtest::source_dir() + "/configs/families/llama2-13b.toml");
  EXPECT_EQ(f13.shape.hidden_size, 5120);
  EXPECT_EQ(f13.shape.intermediate_size, 13824);
  EXPECT_EQ(f13.shape.num_hidden_layers, 40);
  EXPECT_EQ(f13.shape.num_attention_heads, 40);
  EXPECT_EQ(f13.shape.num_key_value_heads, 40);
  EXPECT_EQ(f13.shape.vocab_size, 32000);
  Family fm = load_family(bmtest::source_dir() + "/configs/families/mistral-7b.toml");
  EXPECT_EQ(fm.shape.intermediate_size, 14336);
  EXPECT_EQ(fm.shape.num_key_value_heads, 8);  // GQA
  std::string tmp = bmtest::make_tmpdir("cfgshape");
  const std::string head = "name = \"t\"\narchitecture = \"llama\"\n[base]\npath = \"b\"\n[experts.chat]\npath = \"c\"\n"
                           "domain = \"chat\"\n[shape]\n";
  bmtest::write(tmp + "/over.toml", head + "preset = \"llama2-7b\"\nvocab_size = 32001\nnum_hidden_layers = 2\n");
  Family fo = load_family(tmp + "/over.toml");
  EXPECT_EQ(fo.shape.vocab_size, 32001);
  EXPECT_EQ(fo.shape.num_hidden_layers, 2);
  EXPECT_EQ(fo.shape.hidden_size, 4096);
  EXPECT_EQ(fo.shape.num_key_value_heads, 32);
  bmtest::write(tmp + "/bad.toml", head + "preset = \"llama2-7c\"\n");
  std::string msg = error_of([&] { load_family(tmp + "/bad.toml"); });
  EXPECT_NE(msg.find("bad.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape.preset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama2-7b"), std::string::npos) << msg;  // the closest name
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(Configs, FamilyWithMismatchedExpertIsRejected) {
  std::string tmp = bmtest::make_tmpdir("cfg5");
  std::string p = bmtest::tiny_experiment(tmp, 0);
  auto cfg = [](int hidden) {
    return "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":100,\"hidden_size\":" +
           std::to_string(hidden) +
           ",\"intermediate_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":2}";
  };
  for (const char* m : {"base", "chat", "math", "code"}) {
    std::string d = tmp + "/models/" + m;
    bmtest::run_cmd("mkdir -p " + d);
    bmtest::write(d + "/config.json", cfg(std::string(m) == "math" ? 32 : 16));
  }
  Experiment e = load_experiment(p);
  std::string msg = error_of([&] { check_checkpoints(e); });
  EXPECT_NE(msg.find("models/math/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size = 32 but the base has 16"), std::string::npos) << msg;
  bmtest::write(tmp + "/models/math/config.json", cfg(16));
  EXPECT_EQ(error_of([&] { check_checkpoints(e); }), "");
}

TEST(Configs, CellKeysChangeWithSettingsNotBatchSize) {
  std::string tmp = bmtest::make_tmpdir("cfg6");
  Experiment a = load_experiment(bmtest::tiny_experiment(tmp, 0));
  Experiment b = a;
  b.eval.batch_size = 64;
  Experiment c = a;
  c.eval.add_bos = true;
  auto ka = expand_cells(a), kb = expand_cells(b), kc = expand_cells(c);
  EXPECT_EQ(ka[0].key, kb[0].key);
  EXPECT_NE(ka[0].key, kc[0].key);
}

TEST(Storage, OneBitMatrixIsASixteenthOfFp16PlusScale) {
  ModelShape s;
  s.vocab_size = 32000, s.hidden_size = 4096, s.intermediate_size = 11008, s.num_hidden_layers = 32;
  s.num_attention_heads = 32, s.num_key_value_heads = 32;
  ParamCounts c = param_counts(s);
  EXPECT_EQ(c.total(), 6738415616);  // LLaMA-2 7B parameter count
  int64_t full = task_vector_bytes(shape_config(s), "none"), lin = task_vector_bytes(shape_config(s), "linear");
  EXPECT_EQ(full, 2 * c.total());
  EXPECT_EQ(lin, 2 * (c.embed + c.head + c.norm) + (c.attn + c.mlp) / 8 + 2 * (c.attn_mats + c.mlp_mats));
}

TEST(Configs, FamilyOverrideRunsTheSameGridOnAnotherFamily) {
  // `bitmerge run --family`: the nano grids on the GPU-size mini family (by name),
  // and on a family TOML path; the variants stay, the cell keys change with the family.
  Experiment nano = load_experiment(exp_path("mini-table2"));
  Experiment mini = load_experiment(exp_path("mini-table2"), "mini");
  EXPECT_EQ(nano.family.name, "mini-nano");
  EXPECT_EQ(mini.family.name, "mini");
  ASSERT_EQ(mini.variants.size(), nano.variants.size());
  auto a = expand_cells(nano, false), b = expand_cells(mini, false);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(a[0].key, b[0].key);
  Experiment by_path = load_experiment(exp_path("table2"), bmtest::source_dir() + "/configs/families/mistral-7b.toml");
  EXPECT_EQ(by_path.family.name, "mistral-7b");
  std::string msg = error_of([&] { load_experiment(exp_path("table2"), "/nonexistent/fam.toml"); });
  EXPECT_NE(msg.find("--family"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/nonexistent/fam.toml"), std::string::npos) << msg;
  msg = error_of([&] { load_experiment(exp_path("table2"), "no-such-family"); });
  EXPECT_NE(msg.find("no-such-family"), std::string::npos) << msg;
}
