// Paired tests between two rows of results (same or different results files):
// per-item scores matched by item id, then tasks/common/stats.hpp.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "harness/report/results.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

// Item scores of a and b on `benchmark`, matched by id (a's order). Empty
// optional, with the reason in *why, when a cell is missing, has no per-item
// scores, or the two were scored on different item sets.
struct Aligned {
  std::vector<double> a, b;
};
std::optional<Aligned> align_items(const Row& a, const Row& b, const std::string& benchmark, std::string* why = nullptr);

// Paired test of a - b on one benchmark or on "average" (over `benchmarks`,
// items resampled within each). Scores in stats' unit (0..1).
std::optional<stats::PairedResult> paired_test(const Row& a, const Row& b, const std::string& benchmark,
                                               const std::vector<std::string>& benchmarks,
                                               const stats::PairedOptions& o, std::string* why = nullptr);

// 100 * average(a) / average(b) with its bootstrap interval (e.g. % of Routing's performance).
std::optional<stats::RatioResult> paired_ratio(const Row& a, const Row& b, const std::vector<std::string>& benchmarks,
                                               const stats::PairedOptions& o, std::string* why = nullptr);

// 100 * (average(a) - average(base)) / (average(b) - average(base)) with its bootstrap
// interval: the share of b's gain over base that a keeps (e.g. a merge vs an expert).
std::optional<stats::RatioResult> paired_gain_kept(const Row& a, const Row& b, const Row& base,
                                                   const std::vector<std::string>& benchmarks,
                                                   const stats::PairedOptions& o, std::string* why = nullptr);

// "p = 0.0123", "p < 1e-10".
std::string format_p(double p);
// "12.34" and "+12.34": points as the comparison and claims tables print them.
std::string format_points(double x);
std::string format_signed_points(double x);

}  // namespace bm::report
