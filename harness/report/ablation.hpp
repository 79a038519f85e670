// The compression ablation (issue 17 item 3; experiment table = "ablation",
// configs/experiments/ablation-bits.toml): per expert x position x scheme, the
// bits per parameter of the stored task vector against the retained
// own-domain gain
//     G = (variant's own-domain average - base's) / (expert's - base's),
// with its standard error. Definitions (also results/ablation-bits/README.md):
//   - own domain: the benchmarks whose Task::domain() is the expert's domain
//     (the expert's name: chat, math, code), averaged unweighted as the paper's Average;
//   - bits per parameter of the delta: from the grid's storage accounting,
//     8 * (storage(variant) - storage(base)) / parameters, parameters =
//     storage(base) / 2 (fp16); the full expert's delta is fp16, 16 bits;
//   - standard error: the paired delta method on the items (variant, base and
//     expert scored on the same items; z_i = (v_i - b_i) - G (e_i - b_i) per
//     own benchmark, Var(G) = sum_k se_k(z)^2 / K^2 / (E - B)^2); interval: the
//     percentile bootstrap with the same draws for the three rows within each
//     benchmark (as stats::paired_compare_average). The bootstrap's sd is not
//     used: resamples where expert and base come close make it explode.
//     Without per-item scores: the delta method with the three cells'
//     standard errors taken as independent, interval G ± 1.96 se.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "harness/report/results.hpp"
#include "harness/report/tables.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

struct AblationRow {
  std::string variant, expert, position, scheme;  // expert row: position "—", scheme "fp16"
  std::optional<double> bits_per_param;            // of the stored delta
  std::optional<double> own_average, own_stderr;   // points
  std::optional<double> gain, gain_se, gain_lo, gain_hi;
  std::string se_method;  // "paired" | "delta (independent)" | "definition" (the expert) | "" (no gain)
};

struct Ablation {
  std::string base;  // the base row's name
  std::vector<std::string> experts;  // in first-seen order
  std::map<std::string, std::vector<std::string>> own_benchmarks;  // expert -> benchmarks of its domain
  std::map<std::string, double> base_average, expert_average;      // expert -> own-domain averages (points)
  std::vector<AblationRow> rows;  // per expert: the full expert, then its compressed variants in config order
  int resamples = 0;
  uint64_t seed = 0;
};

// Throws bm::Error (naming the results) when there is no base row or a
// variant's expert has no full-expert row.
Ablation compute_ablation(const ResultsView& v, const stats::PairedOptions& o = {});

// "attention:ternary=0.1" -> {"attention", "ternary=0.1"}; "mlp" -> {"mlp", "sign"}.
std::pair<std::string, std::string> split_position(const std::string& position);

std::string render_ablation_table(const ResultsView& v, Format f, const stats::PairedOptions& o = {});

}  // namespace bm::report
