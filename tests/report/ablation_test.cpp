// The ablation table (harness/report/ablation.hpp) on hand-made cells: bits per
// parameter from the storage accounting, retained own-domain gain worked out
// by hand, its bootstrap standard error against the paired delta method on
// many items, the delta method without item scores, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "harness/core/error.hpp"
#include "harness/report/ablation.hpp"
#include "harness/report/results.hpp"
#include "harness/report/tables.hpp"

using namespace bm::report;
using nlohmann::json;

namespace {

json experiment(const std::vector<std::string>& benchmarks) {
  json j;
  j["schema"] = kResultsSchemaName;
  j["schema_version"] = kResultsSchemaVersion;
  j["experiment"] = {{"name", "abl"}, {"title", "Ablation: test"}, {"table", "ablation"}, {"family", "f"},
                     {"benchmarks", benchmarks}, {"backend", "model"}};
  j["variants"] = json::array();
  j["cells"] = json::array();
  return j;
}

void variant(json& j, const std::string& name, const std::string& kind, const std::string& expert,
             const std::string& position, double storage) {
  json v = {{"name", name}, {"group", expert.empty() ? "Base" : expert}, {"kind", kind}, {"storage_bytes", storage}};
  if (!expert.empty()) v["expert"] = expert;
  if (!position.empty()) v["position"] = position;
  j["variants"].push_back(v);
}

// A done cell with per-item scores (0/1 or 0..1); score = 100 * mean.
void cell(json& j, const std::string& v, const std::string& b, const std::vector<double>& items) {
  std::vector<std::string> ids;
  double s = 0;
  for (size_t i = 0; i < items.size(); ++i) ids.push_back(b + std::to_string(i)), s += items[i];
  j["cells"].push_back({{"variant", v},
                        {"benchmark", b},
                        {"status", "done"},
                        {"metric", "acc"},
                        {"n_items", items.size()},
                        {"score", 100.0 * s / static_cast<double>(items.size())},
                        {"extra", {{"items", {{"ids", ids}, {"scores", {{"acc", items}}}}}}}});
}

// Hand-made: math domain = gsm8k + math (mmlu is chat's, ignored for the math expert).
//   base   gsm8k 1/4 = 25,  math 0/4 = 0   -> 12.5
//   expert gsm8k 4/4 = 100, math 2/4 = 50  -> 75
//   variant gsm8k 3/4 = 75, math 1/4 = 25  -> 50      G = (50 - 12.5) / (75 - 12.5) = 0.6
// storage: base 1000 bytes = 500 parameters; variant 1000 + 100 -> 8 * 100 / 500 = 1.6 bits.
json hand_made() {
  json j = experiment({"mmlu", "gsm8k", "math"});
  variant(j, "Base", "base", "", "", 1000);
  variant(j, "Math", "expert", "math", "", 1000);
  variant(j, "Math attention 1bit", "compressed", "math", "attention", 1100);
  variant(j, "Math mlp ternary", "compressed", "math", "mlp:ternary=0.1", 1300);
  for (auto* v : {"Base", "Math", "Math attention 1bit", "Math mlp ternary"}) cell(j, v, "mmlu", {1, 0, 1, 0});
  cell(j, "Base", "gsm8k", {0, 0, 0, 1});
  cell(j, "Base", "math", {0, 0, 0, 0});
  cell(j, "Math", "gsm8k", {1, 1, 1, 1});
  cell(j, "Math", "math", {1, 1, 0, 0});
  cell(j, "Math attention 1bit", "gsm8k", {1, 1, 0, 1});
  cell(j, "Math attention 1bit", "math", {1, 0, 0, 0});
  cell(j, "Math mlp ternary", "gsm8k", {0, 0, 0, 1});  // = base: G = 0
  cell(j, "Math mlp ternary", "math", {0, 0, 0, 0});
  return j;
}

const AblationRow& row(const Ablation& a, const std::string& name) {
  for (auto& r : a.rows)
    if (r.variant == name) return r;
  throw std::runtime_error("no row " + name);
}

}  // namespace

TEST(Ablation, SplitPosition) {
  EXPECT_EQ(split_position("attention"), (std::pair<std::string, std::string>{"attention", "sign"}));
  EXPECT_EQ(split_position("mlp:ternary=0.1"), (std::pair<std::string, std::string>{"mlp", "ternary=0.1"}));
}

TEST(Ablation, HandComputedGainAndBits) {
  auto v = view_of(hand_made());
  bm::stats::PairedOptions o;
  o.resamples = 2000;
  Ablation a = compute_ablation(v, o);
  EXPECT_EQ(a.base, "Base");
  ASSERT_EQ(a.experts, std::vector<std::string>{"math"});
  EXPECT_EQ(a.own_benchmarks.at("math"), (std::vector<std::string>{"gsm8k", "math"}));
  EXPECT_DOUBLE_EQ(a.base_average.at("math"), 12.5);
  EXPECT_DOUBLE_EQ(a.expert_average.at("math"), 75.0);
  ASSERT_EQ(a.rows.size(), 3u);
  EXPECT_EQ(a.rows[0].variant, "Math");  // the full expert first
  const auto& e = a.rows[0];
  EXPECT_EQ(e.scheme, "fp16");
  EXPECT_DOUBLE_EQ(*e.bits_per_param, 16.0);
  EXPECT_DOUBLE_EQ(*e.gain, 1.0);
  EXPECT_DOUBLE_EQ(*e.gain_se, 0.0);
  const auto& s = row(a, "Math attention 1bit");
  EXPECT_EQ(s.position, "attention");
  EXPECT_EQ(s.scheme, "sign");
  EXPECT_DOUBLE_EQ(*s.bits_per_param, 1.6);
  EXPECT_DOUBLE_EQ(*s.own_average, 50.0);
  EXPECT_NEAR(*s.gain, 0.6, 1e-12);
  EXPECT_EQ(s.se_method, "paired");
  ASSERT_TRUE(s.gain_se && s.gain_lo && s.gain_hi);
  // z = (v - b) - 0.6 (e - b): gsm8k {0.4, 0.4, -0.6, 0} (sum of squared deviations 0.67),
  // math {0.4, -0.6, 0, 0} (0.51); se = sqrt((0.67/3/4 + 0.51/3/4) / 2^2) / (0.75 - 0.125).
  EXPECT_NEAR(*s.gain_se, std::sqrt((0.67 / 12 + 0.51 / 12) / 4) / 0.625, 1e-12);
  EXPECT_LE(*s.gain_lo, 0.6);
  EXPECT_GE(*s.gain_hi, 0.6);
  const auto& t = row(a, "Math mlp ternary");
  EXPECT_EQ(t.scheme, "ternary=0.1");
  EXPECT_DOUBLE_EQ(*t.bits_per_param, 4.8);
  EXPECT_NEAR(*t.gain, 0.0, 1e-12);

  std::string csv = render_ablation_table(v, Format::Csv, o);
  EXPECT_NE(csv.find("\nmath,Math attention 1bit,attention,sign,1.6000,50.00,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",12.50,75.00,0.6000,"), std::string::npos) << csv;
  std::string md = render_for_experiment(v, Format::Markdown);
  EXPECT_NE(md.find("| math | — | fp16 | 16.000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("|  | attention | sign | 1.600 | 50.00 ± "), std::string::npos) << md;
  EXPECT_NE(md.find("own domain: math = GSM8K+MATH (base 12.50, expert 75.00)"), std::string::npos) << md;
  EXPECT_NE(md.find("| Model | MMLU | GSM8K | MATH | Average |"), std::string::npos) << "the per-benchmark table follows";
  std::string tex = render_ablation_table(v, Format::Latex, o);
  EXPECT_NE(tex.find("\\begin{tabular}{lllrrrr}"), std::string::npos) << tex;
}

// Many items: the paired delta method's standard error,
// SE(G) = sd_i[(v_i - b_i) - G (e_i - b_i)] / sqrt(n) / |E - B| (one benchmark),
// agrees with the paired bootstrap's interval (half-width ~ 1.96 se).
TEST(Ablation, PairedStandardErrorMatchesBootstrapInterval) {
  json j = experiment({"gsm8k"});
  variant(j, "Base", "base", "", "", 1000);
  variant(j, "Math", "expert", "math", "", 1000);
  variant(j, "V", "compressed", "math", "linear", 1070);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  const size_t n = 3000;
  std::vector<double> b(n), e(n), v(n);
  for (size_t i = 0; i < n; ++i) {
    double skill = u(rng);  // items correlate across the three models, as real ones do
    b[i] = skill < 0.2 ? 1 : 0;
    e[i] = skill < 0.7 ? 1 : (u(rng) < 0.1 ? 1 : 0);
    v[i] = skill < 0.45 ? 1 : (u(rng) < 0.2 ? 1 : 0);
  }
  cell(j, "Base", "gsm8k", b);
  cell(j, "Math", "gsm8k", e);
  cell(j, "V", "gsm8k", v);
  bm::stats::PairedOptions o;
  o.resamples = 4000;
  Ablation a = compute_ablation(view_of(j), o);
  const auto& r = row(a, "V");
  double mb = bm::stats::mean(b), me = bm::stats::mean(e), mv = bm::stats::mean(v);
  double g = (mv - mb) / (me - mb);
  EXPECT_NEAR(*r.gain, g, 1e-9);
  std::vector<double> z(n);
  for (size_t i = 0; i < n; ++i) z[i] = (v[i] - b[i]) - g * (e[i] - b[i]);
  double se = bm::stats::sample_stddev(z) / std::sqrt(double(n)) / std::fabs(me - mb);
  EXPECT_NEAR(*r.gain_se, se, 1e-9);
  const double half = (*r.gain_hi - *r.gain_lo) / 2;
  EXPECT_NEAR(half, 1.96 * se, 0.12 * 1.96 * se) << "bootstrap interval [" << *r.gain_lo << ", " << *r.gain_hi << "]";
  EXPECT_LT(*r.gain_lo, g);
  EXPECT_GT(*r.gain_hi, g);
  // Unpaired draws would give the independent-errors value, clearly larger here.
  double ind = std::sqrt(bm::stats::mean_stderr(v) * bm::stats::mean_stderr(v) + g * g * bm::stats::mean_stderr(e) * bm::stats::mean_stderr(e) +
                         (1 - g) * (1 - g) * bm::stats::mean_stderr(b) * bm::stats::mean_stderr(b)) /
               std::fabs(me - mb);
  EXPECT_GT(ind, 1.3 * se);
  EXPECT_DOUBLE_EQ(*r.bits_per_param, 8.0 * 70 / 500);
}

// Cells without per-item scores: the delta method with independent errors, by hand.
TEST(Ablation, DeltaMethodWithoutItems) {
  json j = experiment({"gsm8k"});
  variant(j, "Base", "base", "", "", 1000);
  variant(j, "Math", "expert", "math", "", 1000);
  variant(j, "V", "compressed", "math", "attention", 1100);
  for (auto [name, score, se] : {std::tuple<const char*, double, double>{"Base", 10, 3}, {"Math", 90, 5}, {"V", 50, 4}})
    j["cells"].push_back({{"variant", name}, {"benchmark", "gsm8k"}, {"status", "done"}, {"score", score}, {"stderr", se}});
  Ablation a = compute_ablation(view_of(j));
  const auto& r = row(a, "V");
  EXPECT_DOUBLE_EQ(*r.gain, 0.5);
  EXPECT_EQ(r.se_method, "delta (independent)");
  // sqrt(4^2 + 0.5^2 5^2 + 0.5^2 3^2) / 80
  EXPECT_NEAR(*r.gain_se, std::sqrt(16 + 6.25 + 2.25) / 80, 1e-12);
  std::string md = render_ablation_table(view_of(j), Format::Markdown);
  EXPECT_NE(md.find("0.500 ± 0.062†"), std::string::npos) << md;
}

TEST(Ablation, BadInputIsOneLineError) {
  json j = hand_made();
  json nobase = j;
  nobase["variants"].erase(0);
  try {
    compute_ablation(view_of(nobase));
    FAIL() << "no base row accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("kind \"base\""), std::string::npos) << e.what();
  }
  json noexpert = j;
  noexpert["variants"].erase(1);
  try {
    compute_ablation(view_of(noexpert));
    FAIL() << "compressed variants without their expert accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no full-expert row"), std::string::npos) << e.what();
  }
}
