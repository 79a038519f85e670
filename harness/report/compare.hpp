// Compare two results files cell by cell: a diff table and a verdict.
// A regression = a cell (or average) of NEW below BASELINE by more than
// `tolerance` points, or a cell finished in BASELINE but missing in NEW.
#pragma once
#include <string>

#include "harness/report/results.hpp"

namespace bm::report {

struct CompareResult {
  std::string table;  // Markdown diff table + summary
  int regressions = 0, improvements = 0, missing = 0, compared = 0;
};

CompareResult compare_results(const ResultsView& now, const ResultsView& baseline, double tolerance);

}  // namespace bm::report
