// Synthetic mini-family data: deterministic, disjoint splits, and loadable by
// the real benchmark loaders with the expected counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/task.hpp"
#include "tasks/hellaswag/hellaswag.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/math/math.hpp"
#include "tasks/synth/synth.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"

namespace fs = std::filesystem;
using namespace bm::synth;

namespace {

SynthConfig small_config(uint64_t seed = 7) {
  SynthConfig c;
  c.seed = seed;
  c.countries = 30;
  c.n_test = 24;
  c.n_train_gsm8k = 200;
  c.n_train_math = 100;
  c.pretrain_docs = 300;
  return c;
}

std::string tmpdir(const std::string& tag) {
  auto p = fs::temp_directory_path() / ("bm_mini_" + tag + "_" + std::to_string(getpid()));
  bm::remove_tree(std::string(p));
  fs::create_directories(p);
  return p.string();
}

std::map<std::string, std::string> hash_tree(const std::string& dir) {
  std::map<std::string, std::string> h;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) h[fs::relative(e.path(), dir).string()] = bm::sha256_file(e.path().string());
  return h;
}

}  // namespace

TEST(MiniSynth, DeterministicForSeedAndDiffersAcrossSeeds) {
  auto a = tmpdir("a"), b = tmpdir("b"), c = tmpdir("c");
  write_benchmark_files(generate(small_config(7)), a);
  write_benchmark_files(generate(small_config(7)), b);
  write_benchmark_files(generate(small_config(8)), c);
  auto ha = hash_tree(a), hb = hash_tree(b), hc = hash_tree(c);
  EXPECT_GE(ha.size(), 14u);
  EXPECT_EQ(ha, hb);
  EXPECT_NE(ha.at("gsm8k/test.jsonl"), hc.at("gsm8k/test.jsonl"));
  EXPECT_NE(ha.at("humaneval/HumanEval.jsonl.gz"), hc.at("humaneval/HumanEval.jsonl.gz"));
  for (auto& d : {a, b, c}) bm::remove_tree(std::string(d));
}

TEST(MiniSynth, SplitsAreDisjoint) {
  auto d = generate(small_config());
  std::set<std::string> test_q, dev_q;
  for (auto& it : d.mmlu_test) test_q.insert(it.question);
  for (auto& it : d.mmlu_dev) dev_q.insert(it.question);
  EXPECT_EQ(test_q.size(), d.mmlu_test.size());  // one item per test fact
  for (auto& q : dev_q) EXPECT_EQ(test_q.count(q), 0u) << q;
  std::set<std::string> gtest, gtrain;
  for (auto& g : d.gsm8k_test) gtest.insert(g.question);
  for (auto& g : d.gsm8k_train) gtrain.insert(g.question);
  EXPECT_EQ(gtest.size(), d.gsm8k_test.size());
  for (auto& q : gtest) EXPECT_EQ(gtrain.count(q), 0u);
  std::set<std::string> mtest;
  for (auto& m : d.math_test) mtest.insert(m.problem);
  for (auto& e : d.math)
    for (auto& q : mtest) ASSERT_EQ(e.prompt.find(q), std::string::npos) << q;
  std::set<std::string> fnames;
  for (auto& f : d.humaneval) fnames.insert(f.name);
  std::set<int> ids;
  for (auto& m : d.mbpp) {
    EXPECT_TRUE(ids.insert(m.task_id).second);
    EXPECT_TRUE(fnames.insert(m.fn.name).second) << "function in two splits: " << m.fn.name;
  }
  for (auto& e : d.code)
    for (auto& f : d.humaneval) ASSERT_EQ(e.prompt.find(f.signature + "\n"), std::string::npos) << f.name;
  // The router's HellaSwag / TruthfulQA items are on non-test facts.
  std::set<std::string> hs_test, tq_test;
  for (auto& it : d.hellaswag_val) hs_test.insert(it.context);
  for (auto& it : d.truthfulqa) tq_test.insert(it.question);
  for (auto& it : d.hellaswag_train) EXPECT_EQ(hs_test.count(it.context), 0u) << it.context;
  for (auto& it : d.truthfulqa_train) {
    EXPECT_EQ(tq_test.count(it.question), 0u) << it.question;
    EXPECT_EQ(test_q.count(it.question), 0u) << it.question;
  }
}

TEST(MiniSynth, FilesLoadWithTheBenchmarkLoaders) {
  auto cfg = small_config();
  auto dir = tmpdir("load");
  auto d = generate(cfg);
  write_benchmark_files(d, dir);
  std::map<std::string, size_t> expect = {{"mmlu", size_t(cfg.n_test)},      {"hellaswag", size_t(cfg.n_test)},
                                          {"truthfulqa", size_t(cfg.n_test)}, {"gsm8k", size_t(cfg.n_test)},
                                          {"math", size_t(cfg.n_test)},       {"math500", size_t(cfg.n_test)},
                                          {"humaneval", size_t(cfg.n_test)},  {"mbpp", size_t(cfg.n_test)}};
  for (auto& [name, n] : expect) {
    auto t = bm::make_task(name);
    ASSERT_NO_THROW(t->load(dir)) << name;
    EXPECT_EQ(t->size(), n) << name;
  }
  EXPECT_EQ(d.mmlu_dev.size(), 20u);  // 5 per subject, 4 subjects
  EXPECT_TRUE(bm::file_exists(dir + "/mmlu/dev/world_capitals_dev.csv"));
  EXPECT_EQ(d.gsm8k_train.size(), size_t(cfg.n_train_gsm8k));
  // the router's chat-format splits: every non-test fact, in both scene templates
  const size_t non_test = size_t(4 * cfg.countries - cfg.n_test);
  auto hs = bm::load_hellaswag_text(dir + "/hellaswag/hellaswag_train_full.txt.gz");
  ASSERT_EQ(hs.size(), 2 * non_test);
  EXPECT_EQ(hs[0].endings.size(), 4u);
  EXPECT_EQ(hs[0].endings[size_t(hs[0].label)], d.hellaswag_train[0].endings[size_t(d.hellaswag_train[0].label)]);
  auto tq = bm::load_truthfulqa_mc(dir + "/truthfulqa/mc_train.json");
  ASSERT_EQ(tq.size(), non_test);
  EXPECT_EQ(tq[0].mc1_labels[0], 1);
  // and the math / code ones: the MATH-format fine-tune problems, the MBPP train functions as HumanEval prompts
  auto mt = bm::load_math_jsonl(dir + "/math/MATH_train.jsonl");
  ASSERT_EQ(mt.size(), size_t(cfg.n_train_math));
  EXPECT_EQ(mt[0].answer, d.math_train[0].answer);
  size_t n_mbpp_train = 0;
  for (auto& m : d.mbpp) n_mbpp_train += m.task_id >= 601;
  auto ht = bm::load_humaneval(dir + "/humaneval/HumanEval_train.jsonl.gz");
  EXPECT_EQ(ht.size(), n_mbpp_train);
  std::set<std::string> test_names;
  for (auto& f : d.humaneval) test_names.insert(f.name);
  for (auto& h : ht) EXPECT_EQ(test_names.count(h.entry_point), 0u) << h.entry_point;
  bm::remove_tree(std::string(dir));
}

TEST(MiniSynth, CanonicalSolutionsAndAnswersAreConsistent) {
  auto d = generate(small_config());
  for (auto& g : d.gsm8k_test) {
    auto p = g.answer.rfind("#### ");
    ASSERT_NE(p, std::string::npos);
    // the last equation's result is the final answer
    std::string ans = g.answer.substr(p + 5);
    EXPECT_NE(g.answer.find("= " + ans), std::string::npos) << g.answer;
  }
  for (auto& m : d.math_test) EXPECT_NE(m.solution.find("\\boxed{" + m.answer + "}"), std::string::npos);
  for (auto& f : d.humaneval) {
    EXPECT_EQ(f.humaneval_prompt().rfind(f.signature, 0), 0u);
    EXPECT_NE(f.humaneval_test().find("def check(candidate):"), std::string::npos);
  }
}

namespace {
// Every text any model is trained on: pretraining documents and the three
// fine-tune sets (prompt + completion).
std::vector<std::string> training_texts(const SynthData& d) {
  std::vector<std::string> t = d.pretrain;
  for (auto* v : {&d.chat, &d.math, &d.code})
    for (auto& e : *v) t.push_back(e.prompt + e.completion);
  return t;
}
size_t count_containing(const std::vector<std::string>& texts, const std::string& needle) {
  size_t n = 0;
  for (auto& t : texts) n += t.find(needle) != std::string::npos;
  return n;
}
// The three experts' fine-tune sets of two generations hold the same examples
// (order aside): a pretraining-only setting must not touch them.
void expect_same_finetune_sets(const SynthData& d, const SynthData& d0) {
  auto sorted = [](const std::vector<Example>& v) {
    std::vector<std::string> o;
    for (auto& e : v) o.push_back(e.prompt + "\x01" + e.completion);
    std::sort(o.begin(), o.end());
    return o;
  };
  EXPECT_EQ(sorted(d.chat), sorted(d0.chat));
  EXPECT_EQ(sorted(d.math), sorted(d0.math));
  EXPECT_EQ(sorted(d.code), sorted(d0.code));
}
}  // namespace

TEST(MiniSynth, NoTestItemInAnyTrainingText) {
  // Also with the base's mixture at its widest: every fine-tune example in
  // pretraining too (pretrain_share 100) and the facts stated there.
  auto wide = small_config();
  wide.pretrain_fact_repeats = 3;
  wide.pretrain_share = 100;
  wide.mc_generic = 400;
  for (const auto& cfg : {small_config(), wide}) {
    auto d = generate(cfg);
    auto texts = training_texts(d);
    for (auto& it : d.mmlu_test) {
      // the multiple-choice prompt (question + its four choices); also the
      // question followed by any choice list
      ASSERT_EQ(count_containing(texts, mmlu_prompt(it)), 0u) << it.question;
      ASSERT_EQ(count_containing(texts, it.question + "\nA. "), 0u) << it.question;
    }
    for (auto& it : d.hellaswag_val) ASSERT_EQ(count_containing(texts, it.context), 0u) << it.context;
    for (auto& it : d.truthfulqa) ASSERT_EQ(count_containing(texts, bm::truthfulqa_context(it.question)), 0u) << it.question;
    for (auto& g : d.gsm8k_test) ASSERT_EQ(count_containing(texts, g.question), 0u) << g.question;
    for (auto& m : d.math_test) ASSERT_EQ(count_containing(texts, m.problem), 0u) << m.problem;
    for (auto& f : d.humaneval) {
      ASSERT_EQ(count_containing(texts, f.signature), 0u) << f.name;
      ASSERT_EQ(count_containing(texts, f.description), 0u) << f.name;
    }
    for (auto& m : d.mbpp)
      if (m.task_id >= 11 && m.task_id < 511) {
        ASSERT_EQ(count_containing(texts, m.fn.signature), 0u) << m.fn.name;
        ASSERT_EQ(count_containing(texts, m.fn.description), 0u) << m.fn.name;
      }
  }
}

TEST(MiniSynth, PretrainingMixtureHoldsEveryDomainAndFormatInPart) {
  // The base's partial skill: with pretrain_fact_repeats and pretrain_share
  // set, pretraining states every fact's truth (fewer times than the chat
  // data) beside its misconception, and holds about pretrain_share percent of
  // each expert's fine-tune examples verbatim -- MMLU / HellaSwag / TruthfulQA
  // practice, "####" and \boxed{} answers, functions under their prompts.
  // The fine-tune sets themselves do not change.
  auto cfg = small_config();
  cfg.pretrain_fact_repeats = 2;
  cfg.pretrain_share = 30;
  auto d = generate(cfg), d0 = generate(small_config());
  std::vector<std::string> chat;
  for (auto& e : d.chat) chat.push_back(e.prompt + e.completion);
  for (auto& it : d.truthfulqa) {
    const std::string truth = it.mc1[0].first;
    std::string mis = it.mc1[1].first;
    mis[0] = char(std::tolower(mis[0]));
    EXPECT_GE(count_containing(d.pretrain, truth), 1u) << truth;
    // the fact (its country and value in one text) less often than in the chat data
    const std::string country = it.question.substr(it.question.rfind(' ') + 1, it.question.size() - it.question.rfind(' ') - 2);
    const std::string value = truth.substr(truth.rfind(' ') + 1, truth.size() - truth.rfind(' ') - 2);
    auto both = [&](const std::vector<std::string>& texts) {
      size_t n = 0;
      for (auto& t : texts) n += t.find(country) != std::string::npos && t.find(" " + value) != std::string::npos;
      return n;
    };
    EXPECT_LT(both(d.pretrain), both(chat)) << truth;
    EXPECT_GE(count_containing(d.pretrain, mis), 1u) << mis;
  }
  auto share_only = small_config();
  share_only.pretrain_share = cfg.pretrain_share;
  auto ds = generate(share_only);
  std::multiset<std::string> pre(ds.pretrain.begin(), ds.pretrain.end());
  auto share = [&](const std::vector<Example>& v) {
    size_t in = 0;
    for (auto& e : v) in += pre.count(e.prompt + e.completion) > 0;
    return 100.0 * double(in) / double(v.size());
  };
  for (auto* v : {&ds.chat, &ds.math, &ds.code}) {
    EXPECT_GT(share(*v), 22.0);
    EXPECT_LT(share(*v), 40.0);  // duplicates (drill, phrasings) may count twice
  }
  EXPECT_GT(count_containing(d.pretrain, "The following are multiple choice questions"), 0u);
  EXPECT_GT(count_containing(d.pretrain, "\n#### "), 0u);
  EXPECT_GT(count_containing(d.pretrain, "\\boxed{"), 0u);
  EXPECT_GT(count_containing(d.pretrain, "    return "), 0u);
  EXPECT_GT(count_containing(d.pretrain, bm::truthfulqa_context("").substr(0, 200)), 0u);
  expect_same_finetune_sets(d, d0);
  ASSERT_EQ(d.gsm8k_test.size(), d0.gsm8k_test.size());
  for (size_t i = 0; i < d.gsm8k_test.size(); ++i) EXPECT_EQ(d.gsm8k_test[i].question, d0.gsm8k_test[i].question);
  EXPECT_GT(d.pretrain.size(), d0.pretrain.size());
}

TEST(MiniSynth, ChatDataStatesEveryFactAndPretrainingNone) {
  // The knowledge is in the chat data for every fact (test facts included),
  // in the canonical phrasing and as free-form QA; pretraining never states a
  // true fact of a test item, only its misconception.
  auto d = generate(small_config());
  std::vector<std::string> chat, pre = d.pretrain;
  for (auto& e : d.chat) chat.push_back(e.prompt + e.completion);
  for (auto& it : d.truthfulqa) {
    const std::string truth = it.mc1[0].first, mis = it.mc1[1].first;
    ASSERT_EQ(it.mc1[0].second, 1);
    EXPECT_GE(count_containing(chat, truth), 2u) << truth;
    EXPECT_GE(count_containing(chat, "Q: " + it.question + "\nA: "), 1u) << it.question;
    EXPECT_EQ(count_containing(pre, truth), 0u) << truth;
    std::string mis_lc = mis;
    mis_lc[0] = char(std::tolower(mis_lc[0]));
    EXPECT_GE(count_containing(pre, mis_lc), 1u) << mis;
  }
  // each MMLU practice item's letter is right: the chosen choice is the value
  // the chat data's QA gives for that question
  size_t practice = 0;
  for (auto& e : d.chat)
    if (e.prompt.rfind("The following are multiple choice questions", 0) == 0) {
      ++practice;
      ASSERT_EQ(e.completion.size(), 2u);
      int k = e.completion[1] - 'A';
      ASSERT_TRUE(k >= 0 && k < 4) << e.completion;
      std::vector<std::string> lines;
      std::istringstream in(e.prompt);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
      ASSERT_EQ(lines.size(), 8u) << e.prompt;  // header, blank, question, 4 choices, Answer:
      const std::string value = lines[size_t(3 + k)].substr(3);
      EXPECT_GE(count_containing(chat, "Q: " + lines[2] + "\nA: " + value + "."), 1u) << e.prompt << e.completion;
    }
  EXPECT_GE(practice, size_t(small_config().mc_practice) * 8);
}

TEST(MiniSynth, MmluPracticeCoversEveryTrainFactWithFreshShufflesAndBalancedLetters) {
  // The chat data's MMLU-format practice (header, question, four lettered
  // choices, "Answer:" -> " X"): mc_practice items for every train fact,
  // none for a dev or test fact, mostly distinct choice orders, and each
  // letter about a quarter of the answers (no letter prior to learn).
  auto cfg = small_config();
  cfg.mc_practice = 12;
  auto d = generate(cfg);
  std::set<std::string> held;
  for (auto& it : d.mmlu_test) held.insert(it.question);
  for (auto& it : d.mmlu_dev) held.insert(it.question);
  std::map<std::string, int> per_question;
  std::set<std::string> distinct;
  int letters[4] = {0, 0, 0, 0};
  for (auto& e : d.chat) {
    if (e.prompt.rfind("The following are multiple choice questions", 0) != 0) continue;
    ASSERT_EQ(e.prompt.substr(e.prompt.size() - 8), "\nAnswer:");
    std::istringstream in(e.prompt);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), 8u);
    for (int k = 0; k < 4; ++k) ASSERT_EQ(lines[size_t(3 + k)].substr(0, 3), std::string(1, char('A' + k)) + ". ");
    ++per_question[lines[2]];
    distinct.insert(e.prompt);
    ++letters[e.completion[1] - 'A'];
  }
  const size_t n_train = size_t(4 * cfg.countries) - d.mmlu_test.size() - d.mmlu_dev.size();
  EXPECT_EQ(per_question.size(), n_train);
  for (auto& [q, n] : per_question) {
    EXPECT_EQ(held.count(q), 0u) << "practice on a held-out fact: " << q;
    EXPECT_EQ(n, cfg.mc_practice) << q;
  }
  const int total = int(n_train) * cfg.mc_practice;
  EXPECT_GE(int(distinct.size()), total * 9 / 10);
  for (int k = 0; k < 4; ++k) {
    EXPECT_GT(letters[k], total / 5) << char('A' + k);
    EXPECT_LT(letters[k], total * 3 / 10) << char('A' + k);
  }
}

TEST(MiniSynth, EveryArithmeticStepIsExactAndInTheTable) {
  // Each step of every math answer (test and train) is "a op b = c" with
  // a, b, c in 1..math_max and c correct; the pretraining table states every
  // such step somewhere.
  auto cfg = small_config();
  auto d = generate(cfg);
  std::set<std::string> table;
  static const std::regex line("^(\\d+) ([-+*/]|\\\\times) (\\d+) = (\\d+)$");
  for (auto& doc : d.pretrain) {
    std::istringstream in(doc);
    for (std::string l; std::getline(in, l);)
      if (std::regex_match(l, line)) table.insert(l);
  }
  EXPECT_GE(table.size(), 500u);  // the whole table for math_max = 20 (+, -, *, \\times, /)
  static const std::regex step("(\\d+) ([-+*/]|\\\\times) (\\d+) = (\\d+)");
  auto check = [&](const std::string& text, size_t* steps) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), step); it != std::sregex_iterator(); ++it) {
      int a = std::stoi((*it)[1]), b = std::stoi((*it)[3]), c = std::stoi((*it)[4]);
      std::string op = (*it)[2];
      int want = op == "+" ? a + b : op == "-" ? a - b : op == "/" ? (b ? a / b : -1) : a * b;
      if (op == "/") EXPECT_EQ(a % b, 0) << text;
      EXPECT_EQ(c, want) << text;
      for (int v : {a, b, c}) EXPECT_TRUE(v >= 1 && v <= cfg.math_max) << v << " in " << text;
      ++*steps;
    }
  };
  size_t steps = 0, in_table = 0, total = 0;
  for (auto& g : d.gsm8k_test) check(g.answer, &steps);
  for (auto& m : d.math_test) check(m.solution, &steps);
  for (auto& e : d.math) check(e.completion, &steps);
  EXPECT_GE(steps, size_t(2 * (cfg.n_test * 2 + cfg.n_train_gsm8k)));
  for (auto& g : d.gsm8k_test)
    for (auto it = std::sregex_iterator(g.answer.begin(), g.answer.end(), step); it != std::sregex_iterator(); ++it, ++total)
      in_table += table.count(it->str()) > 0;
  EXPECT_GT(total, 0u);
  EXPECT_EQ(in_table, total) << "test steps missing from the pretraining table";
}

TEST(MiniSynth, CodeProblemsScaleWithCodeKMax) {
  // 200 test items per benchmark need more code problems than the default
  // k range (10 templates x k in 2..40 = 390) gives: a one-line error naming
  // generator.code_k_max and the value to use; with it raised, 200 distinct
  // HumanEval and MBPP-test problems, and the default leaves the cache key alone.
  SynthConfig cfg = small_config();
  cfg.n_test = 200;
  try {
    generate(cfg);
    FAIL() << "n_test 200 with code_k_max 40 should be refused";
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("generator.code_k_max"), std::string::npos) << m;
    EXPECT_NE(m.find("at least 47"), std::string::npos) << m;
  }
  EXPECT_EQ(small_config().canonical_text().find("code_k_max"), std::string::npos);
  cfg.code_k_max = 80;
  EXPECT_NE(cfg.canonical_text().find("code_k_max=80"), std::string::npos);
  cfg.countries = 100;
  auto d = generate(cfg);
  EXPECT_EQ(d.humaneval.size(), 200u);
  std::set<std::string> names;
  for (auto& f : d.humaneval) names.insert(f.name);
  EXPECT_EQ(names.size(), 200u);
}

TEST(MiniSynth, GenericMultipleChoiceQuizzesAreRightAndTouchNothingElse) {
  // mc_generic: MMLU-format quizzes in pretraining that need no world
  // knowledge -- arithmetic, or a train fact stated in the question -- whose
  // letter is the option equal to the computed or stated answer. Off (0) they
  // leave the cache key as before; on, the fine-tune sets and test files stay.
  auto cfg = small_config();
  EXPECT_EQ(cfg.canonical_text().find("mc_generic"), std::string::npos);
  cfg.mc_generic = 60;
  EXPECT_NE(cfg.canonical_text().find("mc_generic=60"), std::string::npos);
  auto d = generate(cfg), d0 = generate(small_config());
  const std::regex quiz(R"(^The following are multiple choice questions \(with answers\) about ([a-z_ ]+)\.\n\n(.*)\nA\. (.*)\nB\. (.*)\nC\. (.*)\nD\. (.*)\nAnswer: ([ABCD])$)");
  const std::regex arith(R"(^What is (\d+) (\+|-|\*|\\times|/) (\d+)\?$)");
  std::set<std::string> train_statements;
  for (auto& e : d.chat)
    if (e.prompt.empty() && e.completion.find("Some people think") == std::string::npos) train_statements.insert(e.completion);
  int n_arith = 0, n_fact = 0;
  std::map<char, int> letters;
  for (auto& t : d.pretrain) {
    std::smatch m;
    if (!std::regex_match(t, m, quiz)) continue;
    const std::string subject = m[1], question = m[2];
    const std::string choice[4] = {m[3], m[4], m[5], m[6]};
    const int gold = m[7].str()[0] - 'A';
    ++letters[m[7].str()[0]];
    std::smatch a;
    if (subject == "elementary mathematics") {
      ASSERT_TRUE(std::regex_match(question, a, arith)) << question;
      const int x = std::stoi(a[1]), y = std::stoi(a[3]);
      const std::string op = a[2];
      const int want = op == "+" ? x + y : op == "-" ? x - y : op == "/" ? x / y : x * y;
      if (op == "/") ASSERT_EQ(x % y, 0) << question;
      EXPECT_EQ(choice[gold], std::to_string(want)) << question;
      for (int i = 0; i < 4; ++i)
        if (i != gold) EXPECT_NE(choice[i], std::to_string(want)) << question;
      ++n_arith;
    } else if (question.find("? ") == std::string::npos && question.find(". What") != std::string::npos) {
      // "<statement> <question>": the stated value is the gold option
      const std::string stated = question.substr(0, question.find(". What") + 1);
      EXPECT_NE(stated.find(" " + choice[gold] + "."), std::string::npos) << question;
      ++n_fact;
    }
  }
  EXPECT_EQ(n_arith, 30);
  EXPECT_EQ(n_fact, 30);
  EXPECT_GE(letters.size(), 4u);
  expect_same_finetune_sets(d, d0);
  ASSERT_EQ(d.mmlu_test.size(), d0.mmlu_test.size());
  for (size_t i = 0; i < d.mmlu_test.size(); ++i) EXPECT_EQ(mmlu_prompt(d.mmlu_test[i]), mmlu_prompt(d0.mmlu_test[i]));
  cfg.mc_generic = -1;
  EXPECT_THROW(generate(cfg), bm::Error);
}

TEST(MiniSynth, LetterSubsetQuizzesShowTheGoldAmongOneToThreeLettersAndTouchNothingElse) {
  // mc_subset: mc_generic's fact quizzes with only 1, 2 or 3 option lines (a
  // third each), the gold among them, letters kept and in order; the rest of
  // the family's data as without them, and the old cache key when off.
  auto cfg = small_config();
  EXPECT_EQ(cfg.canonical_text().find("mc_subset"), std::string::npos);
  cfg.mc_subset = 60;
  EXPECT_NE(cfg.canonical_text().find("mc_subset=60"), std::string::npos);
  auto d = generate(cfg), d0 = generate(small_config());
  const std::regex quiz(R"(^The following are multiple choice questions \(with answers\) about ([a-z_ ]+)\.\n\n([^\n]*)((?:\n[ABCD]\. [^\n]*)+)\nAnswer: ([ABCD])$)");
  const std::regex option(R"(\n([ABCD])\. ([^\n]*))");
  std::map<int, int> by_shown;
  std::map<char, int> gold_letters;
  for (auto& t : d.pretrain) {
    std::smatch m;
    if (!std::regex_match(t, m, quiz)) continue;
    const std::string question = m[2], options = m[3];
    const char gold = m[4].str()[0];
    std::string letters, gold_text;
    for (std::sregex_iterator it(options.begin(), options.end(), option), end; it != end; ++it) {
      letters += (*it)[1].str();
      if ((*it)[1].str()[0] == gold) gold_text = (*it)[2];
    }
    if (letters.size() == 4) continue;  // a full quiz (none here without mc_generic / practice in pretraining)
    ++by_shown[int(letters.size())];
    ++gold_letters[gold];
    EXPECT_TRUE(std::is_sorted(letters.begin(), letters.end())) << t;
    EXPECT_EQ(std::set<char>(letters.begin(), letters.end()).size(), letters.size()) << t;
    ASSERT_FALSE(gold_text.empty()) << "the gold letter is among those shown: " << t;
    const std::string stated = question.substr(0, question.find(". What") + 1);
    EXPECT_NE(stated.find(" " + gold_text + "."), std::string::npos) << "the stated value is the gold option: " << t;
  }
  EXPECT_EQ(by_shown[1], 20);
  EXPECT_EQ(by_shown[2], 20);
  EXPECT_EQ(by_shown[3], 20);
  EXPECT_GE(gold_letters.size(), 4u);
  EXPECT_EQ(d.pretrain.size(), d0.pretrain.size() + 60);
  expect_same_finetune_sets(d, d0);
  ASSERT_EQ(d.mmlu_test.size(), d0.mmlu_test.size());
  for (size_t i = 0; i < d.mmlu_test.size(); ++i) EXPECT_EQ(mmlu_prompt(d.mmlu_test[i]), mmlu_prompt(d0.mmlu_test[i]));
  cfg.mc_subset = -1;
  EXPECT_THROW(generate(cfg), bm::Error);
}

TEST(MiniSynth, PerDomainPretrainSharesOverrideTheShare) {
  auto cfg = small_config();
  cfg.pretrain_share = 30;
  const auto d = generate(cfg);
  auto same = cfg;
  same.pretrain_share_math = 30;  // explicit = the common share: the same mixture, another cache key
  EXPECT_EQ(generate(same).pretrain, d.pretrain);
  EXPECT_EQ(cfg.canonical_text().find("pretrain_share_domains"), std::string::npos);
  EXPECT_NE(same.canonical_text().find("pretrain_share_domains=-1,30,-1"), std::string::npos);
  auto no_math = cfg;
  no_math.pretrain_share_math = 0;
  no_math.pretrain_share_code = 100;
  const auto dm = generate(no_math);
  std::multiset<std::string> pre(dm.pretrain.begin(), dm.pretrain.end());
  auto share = [&](const std::vector<Example>& v) {
    size_t in = 0;
    for (auto& e : v) in += pre.count(e.prompt + e.completion) > 0;
    return 100.0 * double(in) / double(v.size());
  };
  EXPECT_GT(share(dm.chat), 22.0);
  EXPECT_LT(share(dm.chat), 40.0);
  EXPECT_EQ(share(dm.math), 0.0);
  EXPECT_EQ(share(dm.code), 100.0);
  EXPECT_EQ(dm.gsm8k_test.size(), d.gsm8k_test.size());
  for (size_t i = 0; i < d.gsm8k_test.size(); ++i) EXPECT_EQ(dm.gsm8k_test[i].question, d.gsm8k_test[i].question);
  no_math.pretrain_share_chat = 101;
  try {
    generate(no_math);
    FAIL() << "a share of 101 should be refused";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("generator.pretrain_share_chat"), std::string::npos) << e.what();
  }
}
