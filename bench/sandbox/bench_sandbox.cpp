// Sandbox throughput: trivial programs per second, and the 164 canonical
// HumanEval solutions (prompt + canonical_solution + "\n" + test +
// "\ncheck(entry_point)") against the 15 s target on 2 cores.
//   bm_bench_sandbox [--workers N] [--trivial N] [--unsafe]
// Reads $BITMERGE_DATA_DIR/humaneval/HumanEval.jsonl.gz.
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/core/error.hpp"
#include "tasks/sandbox/sandbox.hpp"

namespace {

std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) bm::fail(path, "cannot open; set BITMERGE_DATA_DIR to the shared data folder");
  std::string out;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  if (n < 0) bm::fail(path, "corrupt gzip stream");
  return out;
}

// CPU seconds (user + system) used by reaped children so far.
double children_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bm::SandboxOptions opts;
    int trivial = 200;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--workers" && i + 1 < argc) opts.workers = atoi(argv[++i]);
      else if (a == "--trivial" && i + 1 < argc) trivial = atoi(argv[++i]);
      else if (a == "--unsafe") opts.unsafe_no_sandbox = true;
      else bm::fail(a, "unknown option; use --workers N, --trivial N, --unsafe");
    }
    const char* dd = getenv("BITMERGE_DATA_DIR");
    std::string data_dir = dd ? dd : std::string(BITMERGE_SOURCE_DIR) + "/../shared/data";
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    int workers = opts.workers > 0 ? opts.workers : cores;
    printf("sandbox bench: %s, %d workers, %d cores\n", opts.unsafe_no_sandbox ? "UNSAFE (no bwrap)" : "bwrap",
           workers, cores);
    bm::require_sandbox(opts);

    std::vector<std::string> triv(static_cast<size_t>(trivial), "pass\n");
    double c0 = children_cpu_s();
    double t0 = now_s();
    auto tr = bm::run_python_programs(triv, opts);
    double tt = now_s() - t0;
    double tc = children_cpu_s() - c0;
    int tp = 0;
    for (auto& r : tr) tp += r.passed();
    printf("trivial: %d programs in %.2f s = %.1f programs/s (%d passed)\n", trivial, tt, trivial / tt, tp);
    if (opts.unsafe_no_sandbox) printf("trivial CPU: %.1f ms per program\n", 1000 * tc / trivial);

    std::string text = read_gz(data_dir + "/humaneval/HumanEval.jsonl.gz");
    std::vector<std::string> programs, ids;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      programs.push_back(j["prompt"].get<std::string>() + j["canonical_solution"].get<std::string>() + "\n" +
                         j["test"].get<std::string>() + "\ncheck(" + j["entry_point"].get<std::string>() + ")");
      ids.push_back(j["task_id"].get<std::string>());
    }
    c0 = children_cpu_s();
    t0 = now_s();
    auto hr = bm::run_python_programs(programs, opts);
    double ht = now_s() - t0;
    double hc = children_cpu_s() - c0;
    int hp = 0;
    double slowest = 0;
    std::string slowest_id;
    for (size_t i = 0; i < hr.size(); ++i) {
      hp += hr[i].passed();
      if (!hr[i].passed())
        printf("  NOT PASSED %s: %s %s\n", ids[i].c_str(), hr[i].status.c_str(), hr[i].output.substr(0, 200).c_str());
      if (hr[i].seconds > slowest) slowest = hr[i].seconds, slowest_id = ids[i];
    }
    const double target = 15.0;
    printf("humaneval canonical: %zu programs, %d passed, wall %.2f s = %.1f programs/s; slowest %s %.2f s\n",
           programs.size(), hp, ht, programs.size() / ht, slowest_id.c_str(), slowest);
    if (opts.unsafe_no_sandbox)
      printf("humaneval CPU: %.2f s total, %.1f ms per program\n", hc, 1000 * hc / programs.size());
    (void)hc;
    std::string load = "?";
    if (FILE* f = fopen("/proc/loadavg", "r")) {
      char b[128] = {0};
      if (fgets(b, sizeof b, f)) load = std::string(b, strcspn(b, "\n"));
      fclose(f);
    }
    printf("load average during the run: %s\n", load.c_str());
    printf("ratio to the 15 s target (2 cores): %.3f (%s)\n", ht / target, ht <= target ? "within target" : "OVER target");
    return hp == static_cast<int>(programs.size()) && ht <= target ? 0 : 1;
  } catch (const std::exception& e) {
    fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
