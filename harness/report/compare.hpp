// Two kinds of comparison (docs/statistics.md):
//
// 1. Regression tracking, NEW against BASELINE, cell by cell (+ each row's
//    average). A regression is, by mode:
//      exact     any difference of a score (or of a per-item score); CI's
//                deterministic runs, where the weights are bit-identical;
//      noise     a drop larger than `sigmas` standard errors of the difference
//                (paired over items when both cells carry per-item scores,
//                else sqrt(se_new^2 + se_base^2)); with alpha > 0 instead a
//                drop whose paired test has p < alpha. A cell without any
//                standard error falls back to the tolerance rule;
//      tolerance a drop larger than `tolerance` points (the old rule);
//      auto      exact when both files' provenance.model_sha256 are equal,
//                else noise (one line names both hash sets).
//    A cell finished in BASELINE but missing in NEW always fails.
//
// 2. Two variants (same or different results files) on the same items:
//    difference, confidence interval and p-value per benchmark and for the
//    average (compare_variants).
#pragma once
#include <string>

#include "harness/report/results.hpp"
#include "harness/report/tables.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

enum class CompareMode { Auto, Exact, Noise, Tolerance };
CompareMode parse_compare_mode(const std::string& s);  // auto | exact | noise | tolerance (throws naming --mode)
std::string mode_name(CompareMode m);

struct CompareOptions {
  CompareMode mode = CompareMode::Auto;
  double tolerance = 1.0;  // points (tolerance mode, and noise mode's fallback)
  double sigmas = 2.0;     // noise mode
  double alpha = 0;        // noise mode: > 0 = judge by the paired test's p-value instead
  stats::PairedOptions paired;
};

struct CompareResult {
  std::string table;     // Markdown diff table + summary
  std::string markdown;  // short summary for CI (headline, counts, the rows that are not ok, full table folded)
  std::string header;    // the mode line (and the model hash line in auto mode)
  CompareMode used = CompareMode::Tolerance;
  int regressions = 0, improvements = 0, missing = 0, compared = 0;
};

CompareResult compare_results(const ResultsView& now, const ResultsView& baseline, const CompareOptions& o);
// The tolerance rule only (kept for callers of the first version).
CompareResult compare_results(const ResultsView& now, const ResultsView& baseline, double tolerance);

// "name=1a2b3c4d5e6f, ..." (12 hex per model), "none recorded" when absent.
std::string short_hashes(const nlohmann::json& model_sha256);

// Paired comparison of variant a (in va) against variant b (in vb).
std::string compare_variants(const ResultsView& va, const std::string& a, const ResultsView& vb, const std::string& b,
                             const stats::PairedOptions& o, Format f);

}  // namespace bm::report
