// Claims as data: [[claims]] tables in an experiment config, each a list of
// checks on that experiment's measured results, judged with paired tests.
//
//   [[claims]]
//   id = "3"
//   text = "1bit-Merging has a higher average than Task Arithmetic, TIES and DARE"
//   source = "paper-tables.md claim 3; Table 2"
//   require = "all"                       # all (default) | any
//   checks = [
//     { a = "1bit-Merging", b = ["Task Arithmetic", "TIES-Merging", "DARE"], op = ">", value = 0 },
//   ]
//
// A check: stat (diff | ratio | storage_ratio | value | gain_kept; default diff), a, b
// (string or list: one check per entry), benchmark (default "average"; a list of
// benchmarks = their average, e.g. one domain's), base (gain_kept only),
// op (> | < | within), value (default 0), margin (within only), paper (the
// paper's figure of the same statistic, shown beside the measured one).
//   diff          a - b in points, 95% paired-bootstrap interval
//   ratio         100 * average(a) / average(b), bootstrap interval
//   storage_ratio 100 * storage(a) / storage(b), exact (analytic)
//   value         a's score, interval = score +- 1.96 standard errors
//   gain_kept     100 * (avg(a) - avg(base)) / (avg(b) - avg(base)): the share of b's
//                 gain over base that a keeps, paired bootstrap over items
// Verdict of a check from its interval [lo, hi]: ">": holds if lo > value,
// fails if hi <= value; "<" mirrored; "within": holds if [lo, hi] lies in
// value +- margin, fails if it lies outside; otherwise "inconclusive at this n".
// A diff against 0 on one binary benchmark also needs McNemar's p < 1 - confidence.
// Full text: docs/statistics.md.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "harness/report/results.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

struct ClaimCheck {
  std::string stat = "diff", a, b, benchmark = "average", op = ">";
  std::string base;                     // gain_kept: the variant both gains are measured from
  std::vector<std::string> benchmarks;  // benchmark given as a list: the average over these
  double value = 0, margin = 0;
  std::optional<double> paper;
  std::string describe() const;  // "1bit-Merging − DARE (Average) > 0.00"
};

struct Claim {
  std::string id, text, source, require = "all";
  std::vector<ClaimCheck> checks;
};

// From the [[claims]] of a TOML document (an experiment config); throws
// bm::Error naming file and key. No [[claims]] -> empty.
std::vector<Claim> parse_claims_text(const std::string& toml_text, const std::string& file);
std::vector<Claim> load_claims(const std::string& toml_path);

inline constexpr const char* kHolds = "holds";
inline constexpr const char* kFails = "fails";
inline constexpr const char* kInconclusive = "inconclusive at this n";
inline constexpr const char* kNotMeasured = "not measured";

struct CheckOutcome {
  ClaimCheck check;
  std::string verdict;
  std::optional<double> estimate, lo, hi;
  std::string test;    // how the interval was obtained (+ p-value for diffs)
  std::string detail;  // why not measured
  std::optional<double> mcnemar_p;  // single binary benchmark: the exact test's p
};

struct ClaimOutcome {
  Claim claim;
  std::string verdict;
  std::vector<CheckOutcome> checks;
};

std::vector<ClaimOutcome> evaluate_claims(const std::vector<Claim>& claims, const ResultsView& v,
                                          const stats::PairedOptions& o);

// Markdown report (claims.md) for one experiment; `source` names the results file.
std::string render_claims(const ResultsView& v, const std::vector<ClaimOutcome>& out, const stats::PairedOptions& o,
                          const std::string& source);

}  // namespace bm::report
