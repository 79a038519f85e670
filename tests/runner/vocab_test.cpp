// What the runner asks its owners instead of keeping lists (issue 17): the
// merge methods' vocabulary (merging/vocab.hpp: grid kinds, method names and
// aliases, numeric parameters), the one storage count (merging/storage.hpp),
// and BitDelta's fit settings in the cell key. Torch-free: this program links
// bm_runner_core (and through it bm_merging_info) only.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "harness/core/error.hpp"
#include "harness/runner/config.hpp"
#include "harness/runner/grid.hpp"
#include "harness/runner/storage.hpp"
#include "merging/storage.hpp"
#include "merging/vocab.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm::runner;

namespace {

using bmtest::error_of;

// An experiment on the tiny synthetic family: `top` goes before the variants, `variants` is [[variants]] TOML.
Experiment parse(const std::string& dir, const std::string& top, const std::string& variants) {
  bmtest::tiny_family(dir);
  std::string text = "name = \"v\"\nfamily = \"fam.toml\"\nbackend = \"synthetic\"\nresults_dir = \"" + dir +
                     "/results\"\nbenchmarks = [\"mmlu\", \"gsm8k\"]\n" + top + "\n" + variants;
  return parse_experiment_text(text, dir + "/exp.toml");
}

std::string merge_variant(const std::string& method, const std::string& params = "") {
  return "[[variants]]\nname = \"M\"\nkind = \"merge\"\nmethod = \"" + method + "\"\n" +
         (params.empty() ? "" : "params = { " + params + " }\n");
}

const char* kBitDeltaGrid = R"([[variants]]
name = "Plain"
kind = "compressed"
expert = "math"
position = "attention"
[[variants]]
name = "BD"
kind = "compressed"
expert = "math"
position = "attention:bitdelta"
[[variants]]
name = "1bit-BD"
kind = "onebit_merging"
compress = { chat = "mlp", math = "attention:bitdelta", code = "attention" }
[[variants]]
name = "TIES"
kind = "merge"
method = "ties"
params = { density = 0.2, lambda = 1.0 }
)";

// variant name -> key of its first cell
std::map<std::string, std::string> keys_of(const Experiment& e) {
  std::map<std::string, std::string> k;
  for (auto& c : expand_cells(e, false))
    if (!k.count(c.variant)) k[c.variant] = c.key;
  return k;
}

}  // namespace

TEST(GridVocab, KindsAndMethodNamesComeFromMergingsVocabulary) {
  std::string dir = bmtest::make_tmpdir("vocab1");
  // Every name (and alias) the vocabulary gives kind merge is accepted, and runs that method.
  const auto names = bm::merging::grid_merge_method_names();
  for (const char* n : {"task_arithmetic", "ties", "dare_ties", "dare_linear", "dare", "della", "della_linear",
                        "breadcrumbs", "breadcrumbs_ties"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  for (auto& n : names) {
    SCOPED_TRACE(n);
    Experiment e = parse(dir, "", merge_variant(n));
    const auto* m = bm::merging::grid_method("merge", n);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->name == n || std::find(m->aliases.begin(), m->aliases.end(), n) != m->aliases.end());
    EXPECT_TRUE(e.variants[0].merges_experts());
    EXPECT_FALSE(e.variants[0].routed());
  }
  EXPECT_EQ(bm::merging::grid_method("merge", "dare_linear")->name, "dare");
  // routing and onebit are kinds of their own, not merge methods.
  for (const char* n : {"routing", "onebit"}) {
    std::string msg = error_of([&] { parse(dir, "", merge_variant(n)); });
    EXPECT_NE(msg.find("variants.M.method"), std::string::npos) << msg;
  }
  std::string msg = error_of([&] { parse(dir, "", merge_variant("tie")); });
  EXPECT_NE(msg.find("did you mean 'ties'"), std::string::npos) << msg;
  EXPECT_EQ(bm::merging::grid_method_kinds(), (std::vector<std::string>{"merge", "routing", "onebit_merging"}));
  EXPECT_EQ(bm::merging::grid_method("routing", "")->name, "routing");
  EXPECT_EQ(bm::merging::grid_method("onebit_merging", "")->name, "onebit");
  EXPECT_EQ(bm::merging::grid_method("expert", ""), nullptr);
  Experiment e = parse(dir, "", kBitDeltaGrid);
  EXPECT_TRUE(e.variant("1bit-BD")->routed());
  EXPECT_TRUE(e.variant("BD")->single_expert());
  EXPECT_FALSE(e.variant("BD")->merges_experts());
  msg = error_of([&] { parse(dir, "", "[[variants]]\nname = \"X\"\nkind = \"merging\"\n"); });
  EXPECT_NE(msg.find("variants.X.kind"), std::string::npos) << msg;
  EXPECT_NE(msg.find("base, expert, compressed, merge, routing, onebit_merging"), std::string::npos) << msg;
}

TEST(GridVocab, ParamsAreTheMethodsNumericParameters) {
  std::string dir = bmtest::make_tmpdir("vocab2");
  EXPECT_EQ(parse(dir, "", merge_variant("della", "density = 0.5, epsilon = 0.1, seed = 3")).variants[0].params.at("epsilon"),
            0.1);
  EXPECT_EQ(parse(dir, "", merge_variant("breadcrumbs", "gamma = 0.05")).variants[0].params.at("gamma"), 0.05);
  // gamma is Breadcrumbs', not TIES': the key is named with the method's own.
  std::string msg = error_of([&] { parse(dir, "", merge_variant("ties", "gamma = 0.05")); });
  EXPECT_NE(msg.find("variants.M.params.gamma"), std::string::npos) << msg;
  EXPECT_NE(msg.find("density, lambda"), std::string::npos) << msg;
  // weight is given per expert in `weights`; trim and rescale are not numbers.
  EXPECT_NE(error_of([&] { parse(dir, "", merge_variant("ties", "weight = 0.5")); }), "");
  EXPECT_EQ(bm::merging::grid_numeric_params(*bm::merging::find_method_vocab("della")),
            (std::vector<std::string>{"density", "epsilon", "lambda", "seed"}));
  // routing has no numbers; an expert runs no method.
  msg = error_of([&] { parse(dir, "", "[[variants]]\nname = \"R\"\nkind = \"routing\"\nparams = { lambda = 1.0 }\n"); });
  EXPECT_NE(msg.find("variants.R.params"), std::string::npos) << msg;
  msg = error_of([&] {
    parse(dir, "", "[[variants]]\nname = \"E\"\nkind = \"expert\"\nexpert = \"math\"\nparams = { lambda = 1.0 }\n");
  });
  EXPECT_NE(msg.find("takes no numeric parameters"), std::string::npos) << msg;
  // onebit_merging: onebit's (density, lambda).
  Experiment e = parse(dir, "",
                       "[[variants]]\nname = \"O\"\nkind = \"onebit_merging\"\ncompress = { chat = \"mlp\", math = "
                       "\"attention\", code = \"attention\" }\nparams = { density = 0.5, lambda = 0.8 }\n");
  EXPECT_EQ(e.variants[0].params.at("lambda"), 0.8);
}

TEST(GridStorage, CountsEachMatrixAsBitmergeStorageDoes) {
  // Shapes whose matrices are not multiples of 8 entries: each matrix is its own
  // ceil(numel / 8) + 2 bytes (sign) or ceil(numel / 4) + 2 (ternary).
  ModelShape s;
  s.vocab_size = 7, s.hidden_size = 3, s.intermediate_size = 5, s.num_hidden_layers = 1;
  s.num_attention_heads = 1, s.num_key_value_heads = 1;
  const bm::ModelConfig m = shape_config(s);
  // embed 7x3, lm_head 7x3, 3 norms of 3: (21 + 21 + 9) * 2 = 102 bytes in fp16.
  // attention: 4 matrices of 3x3 = 9 entries -> 2 + 2 bytes each (sign), 3 + 2 (ternary); fp16 18.
  // mlp: 3 matrices of 5x3 = 15 entries -> 2 + 2 bytes each (sign); fp16 30.
  EXPECT_EQ(task_vector_bytes(m, "none"), 102 + 4 * 18 + 3 * 30);
  EXPECT_EQ(task_vector_bytes(m, "linear"), 102 + 4 * 4 + 3 * 4);
  EXPECT_EQ(task_vector_bytes(m, "attention:ternary=0.5"), 102 + 4 * 5 + 3 * 30);
  EXPECT_EQ(task_vector_bytes(m, "mlp:bitdelta"), 102 + 4 * 18 + 3 * 4);
  // The same count as `bitmerge storage` (merging::storage_report) on a real shape.
  s.vocab_size = 32000, s.hidden_size = 4096, s.intermediate_size = 11008, s.num_hidden_layers = 32;
  s.num_attention_heads = 32, s.num_key_value_heads = 32;
  bm::merging::StorageOptions o;
  auto r = bm::merging::storage_report("llama2-7b", bm::model_tensors(shape_config(s)), o);
  std::map<std::string, uint64_t> comp;
  for (auto& c : r.components) comp[c.name] = c.bytes;
  EXPECT_EQ(static_cast<uint64_t>(task_vector_bytes(shape_config(s), "none")), comp.at("model (base or one full expert)"));
  EXPECT_EQ(static_cast<uint64_t>(task_vector_bytes(shape_config(s), "attention")), comp.at("1-bit task vector @ attention"));
  EXPECT_EQ(static_cast<uint64_t>(task_vector_bytes(shape_config(s), "mlp")), comp.at("1-bit task vector @ mlp"));
}

TEST(BitDeltaKey, DefaultsAreTheValuesExistingKeysWereMadeWith) {
  // Cells of bitdelta variants made before [bitdelta] existed were fitted with these;
  // their keys leave the settings out while they are the defaults. Changing a default
  // here would silently reuse those cells and fitted files: give the key a version instead.
  BitDeltaSettings d;
  EXPECT_EQ(d.calib.rows, 64);
  EXPECT_EQ(d.calib.seq_len, 128);
  EXPECT_EQ(d.fit.steps, 200);
  EXPECT_EQ(d.fit.batch_size, 4);
  EXPECT_EQ(d.fit.lr, 1e-4);
  EXPECT_TRUE(d.is_default());
}

TEST(BitDeltaKey, FitSettingsChangeBitDeltaKeysOnly) {
  std::string dir = bmtest::make_tmpdir("vocab3");
  Experiment a = parse(dir, "", kBitDeltaGrid);
  auto ka = keys_of(a);
  ASSERT_EQ(ka.size(), 4u);
  EXPECT_TRUE(bitdelta_key(a).is_null());
  EXPECT_FALSE(variant_spec(a, *a.variant("BD"), false).contains("bitdelta_fit"));
  EXPECT_TRUE(uses_bitdelta(*a.variant("BD")));
  EXPECT_TRUE(uses_bitdelta(*a.variant("1bit-BD")));
  EXPECT_FALSE(uses_bitdelta(*a.variant("Plain")));
  // The defaults written out keep every key.
  Experiment same = parse(dir, "[bitdelta]\nrows = 64\nseq_len = 128\nsteps = 200\nbatch_size = 4\nlr = 1e-4\n", kBitDeltaGrid);
  EXPECT_EQ(keys_of(same), ka);
  // Each setting, changed: the bitdelta variants' keys change, the others' stay.
  for (const char* setting : {"rows = 32", "seq_len = 64", "steps = 50", "batch_size = 8", "lr = 1e-3"}) {
    SCOPED_TRACE(setting);
    Experiment b = parse(dir, std::string("[bitdelta]\n") + setting + "\n", kBitDeltaGrid);
    auto kb = keys_of(b);
    EXPECT_NE(kb.at("BD"), ka.at("BD"));
    EXPECT_NE(kb.at("1bit-BD"), ka.at("1bit-BD"));
    EXPECT_EQ(kb.at("Plain"), ka.at("Plain"));
    EXPECT_EQ(kb.at("TIES"), ka.at("TIES"));
    EXPECT_TRUE(variant_spec(b, *b.variant("BD"), false).contains("bitdelta_fit"));
  }
  Experiment c = parse(dir, "[bitdelta]\nsteps = 50\n", kBitDeltaGrid);
  EXPECT_EQ(c.bitdelta.fit.steps, 50);
  EXPECT_EQ(bitdelta_key(c).at("steps"), 50);
  // Bad settings: one line naming the key.
  std::string msg = error_of([&] { parse(dir, "[bitdelta]\nstep = 50\n", kBitDeltaGrid); });
  EXPECT_NE(msg.find("did you mean 'steps'"), std::string::npos) << msg;
  msg = error_of([&] { parse(dir, "[bitdelta]\nrows = 0\n", kBitDeltaGrid); });
  EXPECT_NE(msg.find("bitdelta.rows"), std::string::npos) << msg;
  msg = error_of([&] { parse(dir, "[bitdelta]\nlr = 0\n", kBitDeltaGrid); });
  EXPECT_NE(msg.find("bitdelta.lr"), std::string::npos) << msg;
}
