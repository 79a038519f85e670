// Loaders on the real benchmark files: expected counts, both formats where a
// benchmark has two, and errors for missing files / malformed records.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "oracle.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/task.hpp"
#include "tasks/gsm8k/gsm8k.hpp"
#include "tasks/hellaswag/hellaswag.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/math/math.hpp"
#include "tasks/mbpp/mbpp.hpp"
#include "tasks/mmlu/mmlu.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"

using bmtest::data_dir;

static std::string csv_quote(const std::string& s) { return "\"" + bm::replace_all(s, "\"", "\"\"") + "\""; }

TEST(MmluLoader, HfLayoutCountsAndSubjects) {
  auto qs = bm::load_mmlu_dir(data_dir() + "/mmlu/test");
  EXPECT_EQ(qs.size(), 14042u);
  std::map<std::string, int> per;
  for (const auto& q : qs) ++per[q.subject];
  EXPECT_EQ(per.size(), 57u);
  EXPECT_EQ(per["abstract_algebra"], 100);
  EXPECT_EQ(per["professional_law"], 1534);
  EXPECT_EQ(qs[0].subject, "abstract_algebra");
  EXPECT_EQ(qs[0].question, "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.");
  EXPECT_EQ(qs[0].choices, (std::vector<std::string>{"0", "4", "2", "6"}));
  EXPECT_EQ(qs[0].answer, 1);
  auto dev = bm::load_mmlu_dir(data_dir() + "/mmlu/dev", "_dev.csv");
  EXPECT_EQ(dev.size(), 285u);
}

TEST(MmluLoader, OriginalHeaderlessLetterLayoutMatches) {
  // Rewrite real records in the original layout (no header, letter answers) and reload.
  auto qs = bm::load_mmlu_csv(data_dir() + "/mmlu/test/high_school_us_history_test.csv", "high_school_us_history");
  ASSERT_GT(qs.size(), 100u);
  std::string dir = bmtest::temp_dir("mmlu_orig");
  std::string text;
  for (const auto& q : qs) {
    text += csv_quote(q.question);
    for (const auto& c : q.choices) text += "," + csv_quote(c);
    text += std::string(",") + "ABCD"[q.answer] + "\r\n";
  }
  bm::write_file_atomic(dir + "/high_school_us_history_test.csv", text);
  auto back = bm::load_mmlu_dir(dir);
  ASSERT_EQ(back.size(), qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    EXPECT_EQ(back[i].question, qs[i].question) << i;
    EXPECT_EQ(back[i].choices, qs[i].choices) << i;
    EXPECT_EQ(back[i].answer, qs[i].answer) << i;
    EXPECT_EQ(back[i].subject, "high_school_us_history");
  }
  // Multi-line quoted questions survive (this subject has them).
  bool multiline = false;
  for (const auto& q : qs) multiline |= q.question.find('\n') != std::string::npos;
  EXPECT_TRUE(multiline);
}

TEST(MmluLoader, MalformedRowNamesFileAndLine) {
  std::string dir = bmtest::temp_dir("mmlu_bad");
  bm::write_file_atomic(dir + "/x_test.csv", "q1,a,b,c,d,A\nq2,a,b,c,d,E\n");
  try {
    bm::load_mmlu_dir(dir);
    FAIL() << "no error";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x_test.csv:2"), std::string::npos) << e.what();
  }
}

TEST(HellaswagLoader, TextFormatCountsAndLabels) {
  auto items = bm::load_hellaswag_text(data_dir() + "/hellaswag/hellaswag_val_full.txt.gz");
  ASSERT_EQ(items.size(), 10042u);
  int counts[4] = {0, 0, 0, 0};
  for (const auto& it : items) {
    ++counts[it.label];
    ASSERT_EQ(it.endings.size(), 4u);
  }
  EXPECT_EQ(counts[0], 2515);
  EXPECT_EQ(counts[1], 2485);
  EXPECT_EQ(counts[2], 2584);
  EXPECT_EQ(counts[3], 2458);
  // ctx_b ("he") is capitalized as lm-eval's capitalize(ctx_b) does.
  EXPECT_EQ(items[0].query, "Roof shingle removal: A man is sitting on a roof. He");
  EXPECT_EQ(items[0].label, 3);
  EXPECT_EQ(items[0].endings[3], "starts pulling up roofing on a roof.");
  EXPECT_EQ(items[1].query, "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady");
}

TEST(HellaswagLoader, RowanzJsonlFormat) {
  std::string dir = bmtest::temp_dir("hs_jsonl");
  std::string p = dir + "/hellaswag_val.jsonl";
  nlohmann::json a = {{"ind", 4},
                      {"activity_label", "Removing ice from car"},
                      {"ctx_a", "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles."},
                      {"ctx_b", "then"},
                      {"endings", {", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."}},
                      {"label", "3"}};
  nlohmann::json b = {{"activity_label", "Home and Garden"},
                      {"ctx_a", "[header] How to grow tomatoes [title] Pick a spot."},
                      {"ctx_b", "[step] Tomatoes need SUN."},
                      {"endings", {"[substeps] a", "b  c", "[title] d", "e"}},
                      {"label", 0}};
  bm::write_file_atomic(p, a.dump() + "\n" + b.dump() + "\n");
  auto items = bm::load_hellaswag_jsonl(p);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].query, "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman "
                            "wearing winter clothes smiles. Then");
  EXPECT_EQ(items[0].label, 3);
  EXPECT_EQ(items[0].endings[3], ", the man continues removing the snow on his car.");
  // capitalize() lower-cases the rest of ctx_b; brackets removed; " [title]" -> ". ".
  EXPECT_EQ(items[1].query, "Home and Garden: How to grow tomatoes. Pick a spot. tomatoes need sun.");
  EXPECT_EQ(items[1].endings[1], "b c");
  bm::write_file_atomic(p, a.dump() + "\n{\"ctx_a\": 1}\n");
  try {
    bm::load_hellaswag_jsonl(p);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("hellaswag_val.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(TruthfulqaLoader, CountsAndOrder) {
  auto items = bm::load_truthfulqa_mc(data_dir() + "/truthfulqa/mc_task.json");
  ASSERT_EQ(items.size(), 817u);
  size_t mc1 = 0, mc2 = 0;
  for (const auto& it : items) {
    mc1 += it.mc1_choices.size();
    mc2 += it.mc2_choices.size();
    int ones = 0;
    for (int l : it.mc1_labels) ones += l;
    EXPECT_EQ(ones, 1);
    EXPECT_EQ(it.mc1_labels[0], 1);
  }
  EXPECT_EQ(mc1, 4186u);
  EXPECT_EQ(mc2, 6204u);
  EXPECT_EQ(items[0].question, "What happens if you eat a pomegranate?");
  EXPECT_EQ(items[0].mc1_choices[0], "Nothing in particular happens when you eat a pomegranate.");
  EXPECT_EQ(items[0].mc1_choices[1], "You will have to spend winter in the underworld.");  // file order, not sorted
  auto v0 = bm::load_truthfulqa_mc(data_dir() + "/truthfulqa/v0/mc_task.json");
  EXPECT_EQ(v0.size(), 817u);
}

TEST(Gsm8kLoader, Counts) {
  auto t = bm::load_gsm8k(data_dir() + "/gsm8k/test.jsonl");
  EXPECT_EQ(t.size(), 1319u);
  EXPECT_EQ(bm::gsm8k_normalize(t[0].answer), "18");
  EXPECT_EQ(bm::load_gsm8k(data_dir() + "/gsm8k/train.jsonl").size(), 7473u);
}

TEST(MathLoader, JsonlTarAndTreeAgree) {
  auto j = bm::load_math_jsonl(data_dir() + "/math/MATH_test.jsonl");
  auto t = bm::load_math_tar(data_dir() + "/math/MATH_test.tar.gz");
  ASSERT_EQ(j.size(), 5000u);
  ASSERT_EQ(t.size(), 5000u);
  std::map<std::string, int> per;
  for (size_t i = 0; i < j.size(); ++i) {
    ASSERT_EQ(j[i].unique_id, t[i].unique_id) << i;
    EXPECT_EQ(j[i].problem, t[i].problem);
    EXPECT_EQ(j[i].solution, t[i].solution);
    EXPECT_EQ(j[i].answer, t[i].answer);
    EXPECT_FALSE(j[i].answer.empty());
    ++per[j[i].type];
  }
  EXPECT_EQ(per["Algebra"], 1187);
  EXPECT_EQ(per["Precalculus"], 546);
  EXPECT_EQ(j[0].unique_id, "test/algebra/1.json");
  EXPECT_EQ(j[0].answer, "2");
  // Per-problem JSON tree: extract the tarball and load the directory.
  std::string dir = bmtest::temp_dir("math_tree");
  std::string cmd = "tar xzf '" + data_dir() + "/math/MATH_test.tar.gz' -C '" + dir + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto tree = bm::load_math_tree(dir + "/MATH");
  ASSERT_EQ(tree.size(), 5000u);
  EXPECT_EQ(tree[4999].unique_id, j[4999].unique_id);
  EXPECT_EQ(tree[4999].solution, j[4999].solution);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(MathLoader, Math500SubsetOfFull) {
  auto m = bm::load_math_jsonl(data_dir() + "/math/math500_test.jsonl");
  ASSERT_EQ(m.size(), 500u);
  auto full = bm::load_math_jsonl(data_dir() + "/math/MATH_test.jsonl");
  std::map<std::string, const bm::MathProblem*> by;
  for (const auto& p : full) by[p.unique_id] = &p;
  for (const auto& p : m) {
    ASSERT_TRUE(by.count(p.unique_id)) << p.unique_id;
    EXPECT_EQ(by[p.unique_id]->answer, p.answer);
  }
}

TEST(HumanevalLoader, GzAndPlain) {
  auto g = bm::load_humaneval(data_dir() + "/humaneval/HumanEval.jsonl.gz");
  ASSERT_EQ(g.size(), 164u);
  EXPECT_EQ(g[0].task_id, "HumanEval/0");
  EXPECT_EQ(g[163].task_id, "HumanEval/163");
  EXPECT_EQ(g[0].entry_point, "has_close_elements");
  std::string dir = bmtest::temp_dir("he_plain");
  bm::write_file_atomic(dir + "/HumanEval.jsonl", bm::read_maybe_gz(data_dir() + "/humaneval/HumanEval.jsonl.gz"));
  auto p = bm::load_humaneval(dir + "/HumanEval.jsonl");
  ASSERT_EQ(p.size(), 164u);
  EXPECT_EQ(p[100].prompt, g[100].prompt);
  EXPECT_EQ(p[100].test, g[100].test);
}

TEST(MbppLoader, FullAndSanitized) {
  auto all = bm::load_mbpp_jsonl(data_dir() + "/mbpp/mbpp.jsonl");
  EXPECT_EQ(all.size(), 974u);
  auto test = bm::mbpp_test_split(all);
  ASSERT_EQ(test.size(), 500u);
  EXPECT_EQ(test.front().task_id, 11);
  EXPECT_EQ(test.back().task_id, 510);
  EXPECT_EQ(test[0].test_list.size(), 3u);
  auto san = bm::load_mbpp_sanitized(data_dir() + "/mbpp/sanitized-mbpp.json");
  EXPECT_EQ(san.size(), 427u);
  EXPECT_EQ(bm::mbpp_test_split(san).size(), 257u);
  EXPECT_EQ(bm::mbpp_prompt(test[0]).substr(0, 4), "\"\"\"\n");
}

TEST(TaskRegistry, MissingDataFileNamesPathAndFetch) {
  std::string empty = bmtest::temp_dir("empty");
  for (const auto& name : bm::task_names()) {
    auto t = bm::make_task(name);
    try {
      t->load(empty);
      FAIL() << name << " loaded from an empty directory";
    } catch (const bm::Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find(empty), std::string::npos) << m;
      EXPECT_NE(m.find("bitmerge data fetch"), std::string::npos) << m;
    }
  }
  try {
    bm::make_task("hellaswg");
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'hellaswag'"), std::string::npos) << e.what();
  }
}

TEST(TaskRegistry, EveryTaskLoadsRealDataWithUniqueIds) {
  std::map<std::string, size_t> expect = {{"mmlu", 14042}, {"hellaswag", 10042}, {"truthfulqa", 817},
                                          {"gsm8k", 1319}, {"math", 5000},       {"math500", 500},
                                          {"humaneval", 164}, {"mbpp", 500},     {"mbpp_sanitized", 257}, {"truthfulqa_v0", 817}};
  for (const auto& name : bm::task_names()) {
    auto t = bm::make_task(name);
    t->load(data_dir());
    EXPECT_EQ(t->size(), expect.at(name)) << name;
    std::set<std::string> ids;
    for (size_t i = 0; i < t->size(); ++i) ids.insert(t->item_id(i));
    EXPECT_EQ(ids.size(), t->size()) << name;
    EXPECT_FALSE(t->version().empty());
    for (const auto& f : t->data_files()) EXPECT_TRUE(bm::file_exists(f)) << f;
  }
}

TEST(DataIo, CorruptGzipAndJsonLineErrors) {
  std::string dir = bmtest::temp_dir("io");
  bm::write_file_atomic(dir + "/x.jsonl.gz", std::string("\x1f\x8b\x08\x00garbage", 12));
  EXPECT_THROW(bm::read_maybe_gz(dir + "/x.jsonl.gz"), bm::Error);
  bm::write_file_atomic(dir + "/g.jsonl", "{\"question\": \"q\", \"answer\": \"#### 1\"}\n\n{\"question\": \"q\",\n");
  try {
    bm::load_gsm8k(dir + "/g.jsonl");
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("g.jsonl:3"), std::string::npos) << e.what();
  }
  auto rows = bm::parse_csv("a,\"b,\"\"c\"\"\nd\"\r\ne,f\n", "mem");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields[1], "b,\"c\"\nd");
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_THROW(bm::parse_csv("a,\"b\n", "mem"), bm::Error);
}
