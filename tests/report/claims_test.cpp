// Claims, paired comparisons and noise-aware regression tracking on a
// hand-made results file whose every verdict is known in advance.
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/report/claims.hpp"
#include "harness/report/compare.hpp"
#include "harness/report/paired.hpp"
#include "harness/report/results.hpp"
#include "harness/report/tables.hpp"
#include "tests/common/tmpdir.hpp"

using namespace bm::report;
using nlohmann::json;

namespace {

// Two benchmarks of 200 items each. Item scores per variant are set by
// `right(i)`; storage in bytes. Verdicts below follow from these by hand.
json handmade() {
  json j;
  j["schema"] = kResultsSchemaName;
  j["schema_version"] = kResultsSchemaVersion;
  j["experiment"] = {{"name", "hand"}, {"title", "Hand-made"}, {"table", "storage"}, {"family", "f"},
                     {"benchmarks", {"mmlu", "gsm8k"}}, {"best_within", ""}, {"backend", "model"}};
  struct V {
    std::string name;
    int first, count;  // items first..first+count-1 right
    double storage;
  };
  // Strong 150/200 = 75% (items 0..149), Weak 25%, Twin 74% (items 3..150: 3
  // items worse than Strong, 1 better, per benchmark: inside the noise),
  // Routing 80%, NoItems 50% with a standard error but no per-item scores.
  std::vector<V> vs = {{"Strong", 0, 150, 600}, {"Weak", 0, 50, 300}, {"Twin", 3, 148, 300}, {"Routing", 0, 160, 1000},
                       {"NoItems", 0, 100, 300}};
  j["variants"] = json::array();
  j["cells"] = json::array();
  for (auto& v : vs) {
    j["variants"].push_back({{"name", v.name}, {"group", "g"}, {"kind", v.name == "Routing" ? "routing" : "merge"},
                             {"storage_bytes", v.storage}});
    for (std::string b : {"mmlu", "gsm8k"}) {
      json ids = json::array(), sc = json::array();
      for (int i = 0; i < 200; ++i) {
        ids.push_back(b + "/" + std::to_string(i));
        sc.push_back(i >= v.first && i < v.first + v.count ? 1 : 0);
      }
      double score = 100.0 * v.count / 200.0;
      json cell = {{"variant", v.name}, {"benchmark", b}, {"status", "done"}, {"score", score}, {"metric", "acc"},
                   {"n_items", 200}};
      cell["extra"] = {{"metrics", {{"acc", score / 100}, {"acc_stderr", 0.03}}}};
      if (v.name != "NoItems") cell["extra"]["items"] = {{"ids", ids}, {"scores", {{"acc", sc}}}};
      j["cells"].push_back(cell);
    }
  }
  return j;
}

const char* kClaims = R"TOML(
name = "hand"
[[claims]]
id = "H"
text = "Strong beats Weak"
checks = [ { a = "Strong", b = "Weak", op = ">", value = 0 } ]

[[claims]]
id = "F"
text = "Weak beats Strong"
checks = [ { a = "Weak", b = "Strong", op = ">", value = 0 } ]

[[claims]]
id = "I"
text = "Strong beats its twin"
checks = [ { a = "Strong", b = "Twin", op = ">", value = 0 } ]

[[claims]]
id = "ALL"
text = "Strong beats Weak and Twin (all)"
checks = [ { a = "Strong", b = ["Weak", "Twin"], op = ">" } ]

[[claims]]
id = "ANY"
text = "Strong beats Weak or Twin (any)"
require = "any"
checks = [ { a = "Strong", b = ["Twin", "Weak"] } ]

[[claims]]
id = "S"
text = "Strong needs 60% of Routing's storage"
checks = [ { stat = "storage_ratio", a = "Strong", b = "Routing", op = "within", value = 60, margin = 0.5 },
           { stat = "storage_ratio", a = "Weak", b = "Routing", op = "<", value = 50 } ]

[[claims]]
id = "SF"
text = "Strong needs under half of Routing's storage"
checks = [ { stat = "storage_ratio", a = "Strong", b = "Routing", op = "<", value = 50 } ]

[[claims]]
id = "R"
text = "Strong keeps ~94% of Routing's performance"
checks = [ { stat = "ratio", a = "Strong", b = "Routing", op = "within", value = 93.75, margin = 25 } ]

[[claims]]
id = "RF"
text = "Weak keeps 90% of Routing's performance"
checks = [ { stat = "ratio", a = "Weak", b = "Routing", op = ">", value = 90, paper = 94.53 } ]

[[claims]]
id = "N"
text = "A variant that was never run"
checks = [ { a = "Strong", b = "Ghost" } ]

[[claims]]
id = "U"
text = "Unpaired fallback: Strong beats NoItems by far"
checks = [ { a = "Strong", b = "NoItems", op = ">", value = 5 } ]
)TOML";

std::string tmpdir() { return bm::testutil::temp_dir("claims"); }

}  // namespace

TEST(Claims, EachVerdictAsKnownInAdvance) {
  auto v = view_of(handmade());
  auto claims = parse_claims_text(kClaims, "hand.toml");
  ASSERT_EQ(claims.size(), 11u);
  EXPECT_EQ(claims[3].checks.size(), 2u) << "b = [..] expands into one check per entry";
  bm::stats::PairedOptions o;
  o.resamples = 2000;
  auto out = evaluate_claims(claims, v, o);
  std::map<std::string, std::string> got;
  for (auto& c : out) got[c.claim.id] = c.verdict;
  EXPECT_EQ(got["H"], kHolds);         // +50 points on 400 items
  EXPECT_EQ(got["F"], kFails);         // -50 points
  EXPECT_EQ(got["I"], kInconclusive);  // +1 point: 6 vs 2 discordant items of 400
  EXPECT_EQ(got["ALL"], kInconclusive);
  EXPECT_EQ(got["ANY"], kHolds);
  EXPECT_EQ(got["S"], kHolds);  // 600/1000 = 60% exactly; 300/1000 = 30% < 50
  EXPECT_EQ(got["SF"], kFails);
  EXPECT_EQ(got["R"], kHolds);   // 75/80 = 93.75%, interval well inside +-25
  EXPECT_EQ(got["RF"], kFails);  // 25/80 = 31%
  EXPECT_EQ(got["N"], kNotMeasured);
  EXPECT_EQ(got["U"], kHolds);  // 75 vs 50 with se 3 each: unpaired interval far above 5
  // Numbers behind the verdicts.
  auto& h = out[0].checks[0];
  EXPECT_NEAR(*h.estimate, 50.0, 1e-9);
  EXPECT_GT(*h.lo, 40.0);
  EXPECT_NE(h.test.find("paired-bootstrap"), std::string::npos) << "an average is bootstrapped: " << h.test;
  EXPECT_NEAR(*out[6].checks[0].estimate, 60.0, 1e-12);
  EXPECT_NE(out[10].checks[0].test.find("unpaired"), std::string::npos);
  std::string md = render_claims(v, out, o, "hand/results.json");
  EXPECT_NE(md.find("| H | Strong beats Weak | holds |"), std::string::npos) << md;
  EXPECT_NE(md.find("| I | Strong beats its twin | inconclusive at this n |"), std::string::npos) << md;
  EXPECT_NE(md.find("5 hold, 3 fail, 2 inconclusive at this n, 1 not measured."), std::string::npos) << md;
  EXPECT_NE(md.find("seed 0"), std::string::npos);
  EXPECT_NE(md.find("| Weak as % of Routing (Average) > 90.00 | 31.25 |"), std::string::npos) << md;
}

// Share of an expert's gain kept, over one domain's benchmarks. 100 items per benchmark;
// right answers on items 0..k-1: Base mmlu 20 / gsm8k 10, Expert 30 / 90, Merge 30 / 50.
TEST(Claims, GainKeptOverADomainsBenchmarks) {
  json j;
  j["schema"] = kResultsSchemaName;
  j["schema_version"] = kResultsSchemaVersion;
  j["experiment"] = {{"name", "gain"}, {"title", "Gain"}, {"table", "main"}, {"family", "f"},
                     {"benchmarks", {"mmlu", "gsm8k"}}, {"best_within", ""}, {"backend", "model"}};
  std::map<std::string, std::pair<int, int>> right = {{"Base", {20, 10}}, {"Expert", {30, 90}}, {"Merge", {30, 50}},
                                                      {"Same", {20, 10}}};
  for (auto& [name, r] : right) {
    j["variants"].push_back({{"name", name}, {"group", "g"}, {"kind", "merge"}});
    for (std::string b : {"mmlu", "gsm8k"}) {
      int k = b == "mmlu" ? r.first : r.second;
      json ids = json::array(), sc = json::array();
      for (int i = 0; i < 100; ++i) {
        ids.push_back(b + "/" + std::to_string(i));
        sc.push_back(i < k ? 1 : 0);
      }
      json cell = {{"variant", name}, {"benchmark", b}, {"status", "done"}, {"score", double(k)}, {"metric", "acc"},
                   {"n_items", 100}};
      cell["extra"] = {{"metrics", {{"acc", k / 100.0}, {"acc_stderr", 0.04}}},
                       {"items", {{"ids", ids}, {"scores", {{"acc", sc}}}}}};
      j["cells"].push_back(cell);
    }
  }
  auto v = view_of(j);
  auto claims = parse_claims_text(R"TOML(
[[claims]]
id = "half-math"
text = "Merge keeps more than 30% of Expert's GSM8K gain"
checks = [ { stat = "gain_kept", a = "Merge", b = "Expert", base = "Base", benchmark = ["gsm8k"], op = ">", value = 30 } ]
[[claims]]
id = "both"
text = "over both benchmarks"
checks = [ { stat = "gain_kept", a = "Merge", b = "Expert", base = "Base", benchmark = ["mmlu", "gsm8k"], op = ">", value = 90 } ]
[[claims]]
id = "all"
text = "default: the experiment's benchmarks"
checks = [ { stat = "gain_kept", a = "Merge", b = "Expert", base = "Base" } ]
[[claims]]
id = "domain-diff"
text = "Expert is 15 points over Base on the gsm8k domain"
checks = [ { a = "Expert", b = "Base", benchmark = ["gsm8k"], op = ">", value = 15 } ]
[[claims]]
id = "nogain"
text = "a reference with no gain"
checks = [ { stat = "gain_kept", a = "Merge", b = "Same", base = "Base" } ]
)TOML",
                                  "gain.toml");
  bm::stats::PairedOptions o;
  o.resamples = 2000;
  auto out = evaluate_claims(claims, v, o);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_NEAR(*out[0].checks[0].estimate, 50.0, 1e-9);  // (50-10)/(90-10)
  EXPECT_LT(*out[0].checks[0].lo, 50.0);
  EXPECT_GT(*out[0].checks[0].hi, 50.0);
  EXPECT_EQ(out[0].verdict, kHolds);
  EXPECT_NEAR(*out[1].checks[0].estimate, 100.0 * 25 / 45, 1e-9);  // ((30+50)/2-15)/((30+90)/2-15)
  EXPECT_EQ(out[1].verdict, kFails);
  EXPECT_NEAR(*out[2].checks[0].estimate, 100.0 * 25 / 45, 1e-9) << "no list: the experiment's benchmarks";
  EXPECT_NEAR(*out[3].checks[0].estimate, 80.0, 1e-9) << "a diff over a benchmark list averages those only";
  EXPECT_EQ(out[3].verdict, kHolds);
  EXPECT_EQ(out[4].verdict, kNotMeasured);
  EXPECT_NE(out[4].checks[0].detail.find("no gain"), std::string::npos) << out[4].checks[0].detail;
  std::string md = render_claims(v, out, o, "gain/results.json");
  EXPECT_NE(md.find("% of Expert's gain over Base kept by Merge (GSM8K) > 30.00 | 50.00 |"), std::string::npos) << md;
}

TEST(Claims, BadClaimsAreOneLineErrors) {
  auto expect_err = [](const std::string& toml, const std::string& needle) {
    try {
      parse_claims_text(toml, "x.toml");
      ADD_FAILURE() << "no error for " << toml;
    } catch (const bm::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_err("[[claims]]\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\" } ]\n", "x.toml: claims[0].id");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\", op = \">=\" } ]\n",
             "claims[0].checks[0].op");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\", stat = \"ratoi\" } ]\n",
             "did you mean 'ratio'");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\", op = \"within\" } ]\n",
             "margin");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", bb = \"B\" } ]\n", "unknown key");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\", stat = \"gain_kept\" } ]\n",
             "claims[0].checks[0].base");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", b = \"B\", base = \"C\" } ]\n",
             "for stat 'gain_kept' only");
  expect_err("[[claims]]\nid = \"1\"\ntext = \"t\"\nchecks = [ { a = \"A\", stat = \"value\", benchmark = [\"mmlu\"] } ]\n",
             "claims[0].checks[0].benchmark");
  EXPECT_TRUE(parse_claims_text("name = \"x\"\n", "x.toml").empty());
}

TEST(Claims, EveryExperimentConfigsClaimsParseAndNameItsVariants) {
  const char* src = std::getenv("BITMERGE_SOURCE_DIR");
  if (!src) GTEST_SKIP() << "BITMERGE_SOURCE_DIR not set";
  int total = 0;
  for (auto& f : bm::list_dir(std::string(src) + "/configs/experiments")) {
    if (f.size() < 5 || f.substr(f.size() - 5) != ".toml") continue;
    std::string path = std::string(src) + "/configs/experiments/" + f;
    std::string text = bm::read_text_file(path);
    auto cl = load_claims(path);
    EXPECT_FALSE(cl.empty()) << f << " has no [[claims]]";
    for (auto& c : cl)
      for (auto& k : c.checks)
        for (auto& name : {k.a, k.b, k.base})
          if (!name.empty()) {
            EXPECT_NE(text.find("name = \"" + name + "\""), std::string::npos) << f << ": " << name;
          }
    total += static_cast<int>(cl.size());
  }
  EXPECT_GE(total, 20);
}

TEST(Compare, PairedVariantComparison) {
  auto v = view_of(handmade());
  bm::stats::PairedOptions o;
  o.resamples = 1000;
  o.seed = 5;
  std::string md = compare_variants(v, "Strong", v, "Weak", o, Format::Markdown);
  EXPECT_NE(md.find("| MMLU | 200 | 75.00 ± 3.00 | 25.00 ± 3.00 | +50.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("mcnemar-exact (100 vs 0 discordant)"), std::string::npos) << md;
  EXPECT_NE(md.find("| Average | 400 |"), std::string::npos) << md;
  EXPECT_NE(md.find("seed 5"), std::string::npos);
  std::string same = compare_variants(v, "Strong", v, "Strong", o, Format::Csv);
  EXPECT_NE(same.find("\nmmlu,200,75.00,3.00,75.00,3.00,0.00,0.00,0.00,0.00,1.000000,mcnemar-exact,0,0,1000,5\n"),
            std::string::npos)
      << same;
  std::string ni = compare_variants(v, "Strong", v, "NoItems", o, Format::Markdown);
  EXPECT_NE(ni.find("no paired test (NoItems x mmlu has no per-item scores"), std::string::npos) << ni;
  EXPECT_THROW(compare_variants(v, "Strnog", v, "Weak", o, Format::Markdown), bm::Error);
}

TEST(Compare, AutoModeExactWhenWeightsMatchNoiseOtherwise) {
  json base = handmade();
  base["provenance"] = {{"model_sha256", {{"base", "sha256:" + std::string(64, 'a')}, {"chat", "sha256:" + std::string(64, 'b')}}}};
  // NEW: Twin's MMLU items 0 and 1 swapped -> same score, different items.
  json now = base;
  for (auto& c : now["cells"])
    if (c["variant"] == "Twin" && c["benchmark"] == "mmlu") {
      auto& s = c["extra"]["items"]["scores"]["acc"];
      s[3] = 0;
      s[151] = 1;
    }
  CompareOptions o;
  auto r = compare_results(view_of(now), view_of(base), o);
  EXPECT_EQ(r.used, CompareMode::Exact);
  EXPECT_EQ(r.regressions, 2) << r.table;  // the cell and its row's average
  EXPECT_NE(r.header.find("Same model weights"), std::string::npos);
  EXPECT_EQ(compare_results(view_of(base), view_of(base), o).regressions, 0);
  // Different weights: one line naming both hash sets; the swap is noise.
  now["provenance"]["model_sha256"]["chat"] = "sha256:" + std::string(64, 'c');
  r = compare_results(view_of(now), view_of(base), o);
  EXPECT_EQ(r.used, CompareMode::Noise);
  EXPECT_EQ(r.regressions, 0) << r.table;
  EXPECT_NE(r.header.find("chat=cccccccccccc"), std::string::npos) << r.header;
  EXPECT_NE(r.header.find("chat=bbbbbbbbbbbb"), std::string::npos) << r.header;
  EXPECT_EQ(std::count(r.header.begin(), r.header.end(), '\n'), 1);
  // Weights not hashed (absent models are recorded as hf:<id>@<rev>): never exact.
  json unhashed = base;
  unhashed["provenance"]["model_sha256"] = {{"base", "hf:x@main"}};
  json unhashed_now = unhashed;
  EXPECT_EQ(compare_results(view_of(unhashed_now), view_of(unhashed), CompareOptions{}).used, CompareMode::Noise);
  // A real drop: Strong loses 30 MMLU items (75% -> 60%): beyond 2 se -> regression.
  for (auto& c : now["cells"])
    if (c["variant"] == "Strong" && c["benchmark"] == "mmlu") {
      for (int i = 120; i < 150; ++i) c["extra"]["items"]["scores"]["acc"][i] = 0;
      c["score"] = 60.0;
    }
  r = compare_results(view_of(now), view_of(base), o);
  EXPECT_GE(r.regressions, 1) << r.table;
  EXPECT_NE(r.table.find("| Strong | MMLU | 75.00 | 60.00 | -15.00 |"), std::string::npos) << r.table;
  EXPECT_NE(r.markdown.find("FAIL"), std::string::npos);
  EXPECT_NE(r.markdown.find("<details>"), std::string::npos);
  // With a huge --sigmas it is within the noise; the p-value rule flags it again.
  o.sigmas = 100;
  EXPECT_EQ(compare_results(view_of(now), view_of(base), o).regressions, 0);
  o.alpha = 0.01;
  EXPECT_GE(compare_results(view_of(now), view_of(base), o).regressions, 1);
  // Exact mode forced: any difference counts even with different hashes.
  CompareOptions e;
  e.mode = CompareMode::Exact;
  EXPECT_GE(compare_results(view_of(now), view_of(base), e).regressions, 2);
  EXPECT_THROW(parse_compare_mode("fuzzy"), bm::Error);
}

TEST(Compare, NoiseModeFallsBackToToleranceWithoutStandardErrors) {
  json base = handmade();
  for (auto& c : base["cells"])
    if (c["variant"] == "NoItems") c.erase("extra");  // no standard error at all
  json now = base;
  for (auto& c : now["cells"])
    if (c["variant"] == "NoItems" && c["benchmark"] == "gsm8k") c["score"] = 47.0;  // -3 points
  CompareOptions o;
  o.mode = CompareMode::Noise;
  o.tolerance = 1.0;
  auto r = compare_results(view_of(now), view_of(base), o);
  EXPECT_NE(r.table.find("| NoItems | GSM8K | 50.00 | 47.00 | -3.00 | — | tolerance (no se) | REGRESSION |"),
            std::string::npos)
      << r.table;
  o.tolerance = 5.0;
  EXPECT_EQ(compare_results(view_of(now), view_of(base), o).regressions, 0);
}

TEST(Tables, BestNotSignificantlyBetterIsMarked) {
  json j = handmade();
  j["experiment"]["table"] = "main";
  auto v = view_of(j);
  auto marks = best_marks(v, {});
  // Routing (80%) is best; Strong (75%) the runner-up: 10 vs 0 discordant items, p = 0.002 -> no mark.
  EXPECT_EQ(marks["mmlu"].best, "Routing");
  EXPECT_EQ(marks["mmlu"].runner_up, "Strong");
  ASSERT_TRUE(marks["mmlu"].p.has_value());
  EXPECT_LT(*marks["mmlu"].p, 0.05);
  // Make Routing only 2 items better than Strong: not significant -> "≈".
  for (auto& c : j["cells"])
    if (c["variant"] == "Routing") {
      c["score"] = 76.0;
      for (int i = 152; i < 160; ++i) c["extra"]["items"]["scores"]["acc"][i] = 0;
    }
  v = view_of(j);
  std::string md = render_table(v, Format::Markdown);
  EXPECT_NE(md.find("| Routing | **76.00**≈ ±3.00 / — |"), std::string::npos) << md;
  EXPECT_NE(md.find("not significantly better than the runner-up"), std::string::npos);
}

TEST(Tables, MeasuredMinusPaperInStandardErrors) {
  json j = handmade();
  j["experiment"]["table"] = "main";
  j["variants"][0]["paper"] = {{"mmlu", 70.0}, {"gsm8k", 74.0}, {"average", 72.0}};
  auto v = view_of(j);
  std::string d = render_paper_diff_table(v, Format::Markdown);
  // Strong MMLU 75 vs 70: +5 = 1.7 se (se 3.00) -> plain; average 75 vs 72: +3 / (3*sqrt2/2 = 2.12) = 1.4.
  EXPECT_NE(d.find("| Strong | +5.00 (1.7σ) | +1.00 (0.3σ) | +3.00 (1.4σ) |"), std::string::npos) << d;
  j["variants"][0]["paper"]["mmlu"] = 60.0;  // +15 = 5 se -> bold
  d = render_paper_diff_table(view_of(j), Format::Markdown);
  EXPECT_NE(d.find("**+15.00 (5.0σ)**"), std::string::npos) << d;
  EXPECT_EQ(render_paper_diff_table(view_of(handmade()), Format::Markdown), "") << "no paper cells, no table";
  std::string csv = render_paper_diff_table(view_of(j), Format::Csv);
  EXPECT_NE(csv.find("g,Strong,+15.00,5.0,+1.00,0.3,"), std::string::npos) << csv;
}
