// The grid runner on the synthetic backend: cached cells are skipped, a
// kill -9 of a real run loses only the cell in flight, GPU workers split the
// grid, results.json carries provenance and a schema version.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <set>
#include <thread>

#include "harness/core/fileio.hpp"
#include "harness/report/results.hpp"
#include "harness/runner/cache.hpp"
#include "harness/runner/runner.hpp"
#include "tests/runner/helpers.hpp"

using namespace bm::runner;

namespace {
size_t count_cells(const std::string& dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string s = e->d_name;
      if (s.size() > 5 && s.substr(s.size() - 5) == ".json" && s.find(".tmp") == std::string::npos &&
          s.find("samples") == std::string::npos)
        ++n;
    }
    ::closedir(d);
  }
  return n;
}
}  // namespace

TEST(Run, SecondRunSkipsFinishedCells) {
  std::string tmp = bmtest::make_tmpdir("run");
  Experiment e = load_experiment(bmtest::tiny_experiment(tmp, 0));
  RunSummary a = run_experiment(e, {});
  EXPECT_EQ(a.total, 8u);
  EXPECT_EQ(a.evaluated, 8u);
  EXPECT_EQ(a.cached, 0u);
  RunSummary b = run_experiment(e, {});
  EXPECT_EQ(b.cached, 8u);
  EXPECT_EQ(b.evaluated, 0u);
  // A changed setting is a different cell.
  RunOptions o;
  o.limit = 5;
  RunSummary c = run_experiment(e, o);
  EXPECT_EQ(c.evaluated, 8u);
  EXPECT_EQ(count_cells(tmp + "/results/cells"), 16u);
  // Deleting one cell recomputes exactly that one.
  auto cells = expand_cells(e);
  std::remove((tmp + "/results/cells/" + cells[3].key + ".json").c_str());
  RunSummary d = run_experiment(e, {});
  EXPECT_EQ(d.evaluated, 1u);
}

// --cells-dir: experiments sharing one cell cache evaluate a shared cell once (keys are
// content: models, settings, benchmark; not the experiment's or the variant's name).
TEST(Run, SharedCellsDirEvaluatesACellOnce) {
  std::string tmp = bmtest::make_tmpdir("shared");
  Experiment e = load_experiment(bmtest::tiny_experiment(tmp, 0));
  RunOptions o;
  o.cells_dir = tmp + "/shared-cells";
  o.results_dir = tmp + "/a";
  RunSummary a = run_experiment(e, o);
  EXPECT_EQ(a.evaluated, 8u);
  EXPECT_EQ(count_cells(tmp + "/shared-cells"), 8u);
  EXPECT_EQ(count_cells(tmp + "/a/cells"), 0u) << "the shared cache replaces the experiment's own";
  Experiment e2 = e;
  e2.name = "tiny2";
  e2.variants[0].name = "Renamed";
  e2.variants.pop_back();  // 3 of the 4 variants
  o.results_dir = tmp + "/b";
  RunSummary b = run_experiment(e2, o);
  EXPECT_EQ(b.total, 6u);
  EXPECT_EQ(b.cached, 6u);
  EXPECT_EQ(b.evaluated, 0u);
  auto j = bm::report::load_results(b.results_json);
  ASSERT_EQ(j["cells"].size(), 6u);
  for (auto& c : j["cells"]) EXPECT_EQ(c["status"], "done") << c.dump();
  EXPECT_EQ(j["cells"][0]["variant"], "Renamed");
  // Without --cells-dir the experiment keeps its own cache: evaluated again.
  RunOptions p;
  p.results_dir = tmp + "/c";
  EXPECT_EQ(run_experiment(e2, p).evaluated, 6u);
  EXPECT_EQ(count_cells(tmp + "/c/cells"), 6u);
}

TEST(Run, ResultsJsonHasProvenanceAndSchema) {
  std::string tmp = bmtest::make_tmpdir("prov");
  Experiment e = load_experiment(bmtest::tiny_experiment(tmp, 0));
  RunSummary s = run_experiment(e, {});
  auto j = bm::report::load_results(s.results_json);
  EXPECT_EQ(j["schema_version"], bm::report::kResultsSchemaVersion);
  auto& p = j["provenance"];
  EXPECT_EQ(p["git_commit"].get<std::string>().size(), 40u);
  EXPECT_TRUE(p["libraries"].contains("tomlplusplus"));
  EXPECT_TRUE(p["libraries"].contains("sentencepiece"));
  EXPECT_TRUE(p["libraries"].contains("torch"));
  EXPECT_EQ(p["seeds"]["experiment"], 0);
  EXPECT_EQ(p["config"]["name"], "tiny");
  EXPECT_EQ(p["config"]["variants"].size(), 4u);
  // Data sha256 of the real benchmark files of the grid (mmlu, gsm8k).
  if (std::getenv("BITMERGE_DATA_DIR")) {
    ASSERT_TRUE(p["data_sha256"].contains("gsm8k/test.jsonl")) << p["data_sha256"].dump();
    EXPECT_EQ(p["data_sha256"]["gsm8k/test.jsonl"], "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14");
  }
  EXPECT_EQ(j["cells"].size(), 8u);
  for (auto& c : j["cells"]) EXPECT_EQ(c["status"], "done");
  EXPECT_GT(j["variants"][3]["storage_bytes"].get<double>(), j["variants"][2]["storage_bytes"].get<double>());
}

TEST(Run, KillNineLosesOnlyTheCellInFlight) {
  std::string tmp = bmtest::make_tmpdir("kill");
  std::string cfg = bmtest::tiny_experiment(tmp, 0.4, 4);  // 16 cells, 0.4 s each
  std::string cells_dir = tmp + "/results/cells";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(BM_RUNNER_DRIVER, BM_RUNNER_DRIVER, "run", cfg.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  auto t0 = std::chrono::steady_clock::now();
  while (count_cells(cells_dir) < 5 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // mid-cell
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st));
  size_t done = count_cells(cells_dir);
  ASSERT_GE(done, 5u);
  ASSERT_LT(done, 16u) << "run finished before the kill; nothing was tested";
  // Every saved cell is complete JSON.
  Experiment e = load_experiment(cfg);
  CellStore store(e.cell_dir());
  for (auto& c : expand_cells(e))
    if (store.has(c.key)) EXPECT_NO_THROW(store.read(c.key));
  // Resume: exactly the remaining cells run, finished ones are not redone.
  auto r = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + cfg);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("16 cells, " + std::to_string(done) + " cached, " + std::to_string(16 - done) + " evaluated"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(count_cells(cells_dir), 16u);
}

TEST(Run, OneWorkerProcessPerGpu) {
  std::string tmp = bmtest::make_tmpdir("gpus");
  std::string cfg = bmtest::tiny_experiment(tmp, 0.05, 4);
  auto r = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + cfg + " --gpus 0,1");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = bm::report::load_results(tmp + "/results/results.json");
  std::set<std::string> devices;
  std::set<int64_t> pids;
  for (auto& c : j["cells"]) {
    ASSERT_EQ(c["status"], "done");
    devices.insert(c["extra"]["cuda_visible_devices"].get<std::string>());
    pids.insert(c["extra"]["worker_pid"].get<int64_t>());
  }
  EXPECT_EQ(devices, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(pids.size(), 2u);
}

TEST(Run, CliErrorsAreOneLineWithExitCode2) {
  std::string tmp = bmtest::make_tmpdir("err");
  std::string cfg = bmtest::tiny_experiment(tmp, 0);
  auto r = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + cfg + " --gpus 0,x");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--gpus: 'x' is not a GPU index"), std::string::npos) << r.out;
  r = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + tmp + "/nope.toml");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find(tmp + "/nope.toml"), std::string::npos) << r.out;
}

TEST(Run, TableAndCompareVerbsOnARealRun) {
  std::string tmp = bmtest::make_tmpdir("verbs");
  std::string cfg = bmtest::tiny_experiment(tmp, 0);
  ASSERT_EQ(bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " run " + cfg).rc, 0);
  std::string res = tmp + "/results/results.json";
  auto t = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " table " + res + " --format csv");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_EQ(t.out.substr(0, 11), "group,model");
  // Same file: no regression.
  auto c = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " compare " + res + " " + res);
  EXPECT_EQ(c.rc, 0) << c.out;
  // Lower one score in a copy used as NEW: regression -> exit 1.
  auto j = bm::report::load_results(res);
  j["cells"][0]["score"] = j["cells"][0]["score"].get<double>() - 5.0;
  bm::report::save_results(tmp + "/worse.json", j);
  c = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " compare " + tmp + "/worse.json " + res + " --tolerance 1");
  EXPECT_EQ(c.rc, 1) << c.out;
  EXPECT_NE(c.out.find("REGRESSION"), std::string::npos);
  c = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " compare " + tmp + "/worse.json " + res + " --tolerance 6");
  EXPECT_EQ(c.rc, 0) << c.out;
  // Another schema version: exit 2 with a clear message.
  j["schema_version"] = 99;
  bmtest::write(tmp + "/v99.json", j.dump());
  c = bmtest::run_cmd(std::string(BM_RUNNER_DRIVER) + " compare " + tmp + "/v99.json " + res);
  EXPECT_EQ(c.rc, 2);
  EXPECT_NE(c.out.find("results schema version 99 but this bitmerge reads version 1"), std::string::npos) << c.out;
}
