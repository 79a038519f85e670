#include "harness/report/compare.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/report/tables.hpp"

namespace bm::report {

CompareResult compare_results(const ResultsView& now, const ResultsView& base, double tol) {
  CompareResult res;
  std::ostringstream os;
  auto f2 = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", x);
    return std::string(b);
  };
  os << "| Model | Benchmark | Baseline | New | Delta | Status |\n|---|---|---:|---:|---:|---|\n";
  auto cols = base.benchmarks;
  cols.push_back("average");
  for (auto& br : base.rows) {
    const Row* nr = now.row(br.name);
    for (auto& b : cols) {
      std::optional<double> bv = b == "average" ? br.measured_average(base.benchmarks)
                                                : (br.measured.count(b) ? std::optional<double>(br.measured.at(b))
                                                                        : std::nullopt);
      if (!bv) continue;
      std::optional<double> nv;
      if (nr) nv = b == "average" ? nr->measured_average(base.benchmarks)
                                  : (nr->measured.count(b) ? std::optional<double>(nr->measured.at(b)) : std::nullopt);
      std::string status;
      if (!nv) {
        status = "MISSING";
        ++res.missing;
      } else {
        ++res.compared;
        double d = *nv - *bv;
        if (d < -tol) status = "REGRESSION", ++res.regressions;
        else if (d > tol) status = "improved", ++res.improvements;
        else status = "ok";
      }
      os << "| " << br.name << " | " << benchmark_label(b) << " | " << f2(*bv) << " | " << (nv ? f2(*nv) : "—")
         << " | " << (nv ? (*nv - *bv >= 0 ? "+" : "") + f2(*nv - *bv) : "—") << " | " << status << " |\n";
    }
  }
  os << "\n" << res.compared << " compared (tolerance " << f2(tol) << " points): " << res.regressions
     << " regressions, " << res.missing << " missing, " << res.improvements << " improved.\n";
  res.table = os.str();
  return res;
}

}  // namespace bm::report
