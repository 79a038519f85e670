// The paper's tables from results.json: rows grouped (Finetuned /
// Compressed experts / Merging methods, or per expert for position tables),
// columns = benchmarks + Average, each cell "measured ± stderr / paper", the
// best measured value per column marked (within `best_within` when set).
#pragma once
#include <string>

#include "harness/report/results.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

enum class Format { Markdown, Latex, Csv };
Format parse_format(const std::string& s);  // md | markdown | latex | tex | csv (throws naming --format)

std::string benchmark_label(const std::string& b);

// Statistics shown in tables: the best value is marked "≈" (LaTeX: $^\approx$)
// when a paired test finds it not significantly better than the runner-up
// (p >= alpha); measured - paper is judged in measured standard errors (bold
// when |z| > z). Documented in docs/statistics.md.
struct TableOptions {
  stats::PairedOptions paired;
  double alpha = 0.05;
  double z = 2.0;
};

// Per column: best and runner-up (within best_within) and the paired test between them.
struct BestMark {
  std::string best, runner_up;
  std::optional<double> p;  // none when either lacks per-item scores
  bool not_significant(double alpha) const { return p && *p >= alpha; }
};
std::map<std::string, BestMark> best_marks(const ResultsView& v, const stats::PairedOptions& o);

std::string render_table(const ResultsView& v, Format f, const TableOptions& o = {});
// measured - paper per cell, in points and measured standard errors ("" when no row has paper cells).
std::string render_paper_diff_table(const ResultsView& v, Format f, const TableOptions& o = {});
// Storage: bytes per variant, % of Routing's storage and performance, paper's claims.
std::string render_storage_table(const ResultsView& v, Format f, const stats::PairedOptions& o = {});
// Router accuracy per benchmark for the routed variants ("" when none has one).
std::string render_router_table(const ResultsView& v, Format f);
// Whichever the experiment's `table` asks for (main/position/routing -> render_table, storage -> both,
// ablation -> render_ablation_table (harness/report/ablation.hpp) then render_table).
std::string render_for_experiment(const ResultsView& v, Format f, const TableOptions& o = {});

// Best measured row per benchmark ("average" included), by row name.
std::map<std::string, std::string> best_rows(const ResultsView& v);

}  // namespace bm::report
