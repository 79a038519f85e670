// Code-execution throughput: all 164 canonical HumanEval solutions through the
// sandbox (the same programs `bitmerge exec-check` runs). Prints programs/s,
// wall time and the ratio to the 15 s limit.
//   bench_tasks_exec [DATA_DIR] [--unsafe-no-sandbox] [--workers N] [--repeat R]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "harness/core/error.hpp"
#include "tasks/humaneval/humaneval.hpp"
#include "tasks/sandbox/sandbox.hpp"

int main(int argc, char** argv) {
  std::string data = std::getenv("BITMERGE_DATA_DIR") ? std::getenv("BITMERGE_DATA_DIR") : "../shared/data";
  bm::SandboxOptions opts;
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--unsafe-no-sandbox")) opts.unsafe_no_sandbox = true;
    else if (!std::strcmp(argv[i], "--workers") && i + 1 < argc) opts.workers = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else data = argv[i];
  }
  try {
    bm::require_sandbox(opts);
    auto probs = bm::load_humaneval(data + "/humaneval/HumanEval.jsonl.gz");
    std::vector<std::string> programs;
    for (const auto& p : probs) programs.push_back(bm::humaneval_program(p, p.canonical_solution));
    const double limit = 15.0;
    double best = 1e30;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      auto res = bm::run_python_programs(programs, opts);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      int passed = 0;
      double cpu_sum = 0;
      for (const auto& x : res) passed += x.passed(), cpu_sum += x.seconds;
      std::printf("run %d: %zu programs, %d passed, wall %.2f s, %.1f programs/s, mean per-program wall %.3f s\n", r + 1,
                  programs.size(), passed, s, programs.size() / s, cpu_sum / programs.size());
      if (passed != static_cast<int>(programs.size())) std::printf("WARNING: not all canonical solutions passed\n");
      best = std::min(best, s);
    }
    std::printf("humaneval canonical x164: best wall %.2f s (limit %.0f s, ratio %.2f), %.1f programs/s, %s, %u cores, workers=%d\n",
                best, limit, best / limit, programs.size() / best, opts.unsafe_no_sandbox ? "no sandbox" : "bubblewrap",
                std::thread::hardware_concurrency(), opts.workers);
    return best <= limit ? 0 : 1;
  } catch (const bm::Error& e) {
    std::fprintf(stderr, "bench_tasks_exec: error: %s\n", e.what());
    return 2;
  }
}
