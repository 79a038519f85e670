// A real single-node Slurm (munged, slurmctld, slurmd started by
// slurm_local.sh in a temp dir) runs a tiny grid as a job array; collect
// assembles results.json. `make test` installs slurm-wlm and munge, so a Slurm
// that cannot start is a failure, not a skip (BITMERGE_ALLOW_NO_SLURM=1 turns
// it into a skip on machines where the packages cannot be installed).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "harness/core/fileio.hpp"
#include "harness/report/results.hpp"
#include "tests/runner/helpers.hpp"

namespace {
const std::string kDriver = BM_RUNNER_DRIVER;

class Slurm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = bmtest::make_tmpdir("slurm");
    auto r = bmtest::run_cmd("bash " + bmtest::source_dir() + "/tests/runner/slurm_local.sh start " + dir_);
    if (r.rc != 0) {
      reason_ = r.out;
      return;
    }
    ::setenv("SLURM_CONF", (dir_ + "/slurm.conf").c_str(), 1);
    up_ = true;
  }
  static void TearDownTestSuite() {
    bmtest::run_cmd("bash " + bmtest::source_dir() + "/tests/runner/slurm_local.sh stop " + dir_);
  }
  void SetUp() override {
    if (up_) return;
    const char* allow = std::getenv("BITMERGE_ALLOW_NO_SLURM");
    if (allow && std::string(allow) == "1") GTEST_SKIP() << "Slurm could not start here: " << reason_;
    FAIL() << "Slurm could not start here: " << reason_
           << " (scripts/setup.sh --test installs slurm-wlm and munge; BITMERGE_ALLOW_NO_SLURM=1 skips)";
  }
  static bool wait_for_job(const std::string& id, int seconds) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
      auto q = bmtest::run_cmd("squeue -h -j " + id + " -o %i");
      if (q.rc == 0 && q.out.find_first_not_of(" \n") == std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return false;
  }
  static inline std::string dir_, reason_;
  static inline bool up_ = false;
};
}  // namespace

TEST_F(Slurm, JobArrayPerVariantRunsTheGridAndCollectGathersIt) {
  std::string tmp = bmtest::make_tmpdir("slurmgrid");
  std::string cfg = bmtest::tiny_experiment(tmp, 0, 4);  // 4 variants x 4 benchmarks
  auto s = bmtest::run_cmd(kDriver + " slurm submit " + cfg + " --executable " + kDriver);
  ASSERT_EQ(s.rc, 0) << s.out;
  ASSERT_NE(s.out.find("tasks: 4"), std::string::npos) << s.out;
  auto p = s.out.find("job: ");
  ASSERT_NE(p, std::string::npos) << s.out;
  std::string id = s.out.substr(p + 5, s.out.find('\n', p) - p - 5);
  ASSERT_TRUE(wait_for_job(id, 90)) << "job " << id << " did not finish";
  auto c = bmtest::run_cmd(kDriver + " slurm collect " + cfg);
  ASSERT_EQ(c.rc, 0) << c.out << bm::read_text_file(tmp + "/results/slurm/task-0.out");
  EXPECT_NE(c.out.find("(0 cells missing)"), std::string::npos) << c.out;
  auto j = bm::report::load_results(tmp + "/results/results.json");
  std::set<std::string> tasks;
  for (auto& cell : j["cells"]) {
    ASSERT_EQ(cell["status"], "done");
    tasks.insert(cell["extra"]["slurm_array_task_id"].get<std::string>());
  }
  EXPECT_EQ(tasks, (std::set<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(j["provenance"]["collected_from"], "slurm");
}

TEST_F(Slurm, PerCellArrayAndCollectReportsMissingCells) {
  std::string tmp = bmtest::make_tmpdir("slurmcell");
  std::string cfg = bmtest::tiny_experiment(tmp, 0, 2);  // 8 cells
  auto w = bmtest::run_cmd(kDriver + " slurm submit " + cfg + " --per cell --no-submit --executable " + kDriver);
  ASSERT_EQ(w.rc, 0) << w.out;
  std::string script = bm::read_text_file(tmp + "/results/slurm/job.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=0-7\n"), std::string::npos) << script;
  EXPECT_NE(script.find("--only-cell \"$SLURM_ARRAY_TASK_ID\""), std::string::npos) << script;
  auto c = bmtest::run_cmd(kDriver + " slurm collect " + cfg);
  EXPECT_EQ(c.rc, 1) << c.out;
  EXPECT_NE(c.out.find("missing: Chat x mmlu (array task 0"), std::string::npos) << c.out;
  auto s = bmtest::run_cmd(kDriver + " slurm submit " + cfg + " --per cell --executable " + kDriver);
  ASSERT_EQ(s.rc, 0) << s.out;
  auto p = s.out.find("job: ");
  ASSERT_NE(p, std::string::npos);
  ASSERT_TRUE(wait_for_job(s.out.substr(p + 5, s.out.find('\n', p) - p - 5), 90));
  c = bmtest::run_cmd(kDriver + " slurm collect " + cfg);
  EXPECT_EQ(c.rc, 0) << c.out;
  EXPECT_NE(c.out.find("(0 cells missing)"), std::string::npos) << c.out;
}
