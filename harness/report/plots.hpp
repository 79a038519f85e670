// Figures with gnuplot (PNG via pngcairo, else png; and SVG):
//   storage  experiments -> Figure 3: average vs storage, and % of Routing storage vs % of Routing performance
//   routing  experiments -> Figure 2: per-benchmark bars, routing vs static merging
//   ablation experiments -> bits per parameter vs retained own-domain gain, one panel per expert
//   others               -> average per variant (bars)
#pragma once
#include <string>
#include <vector>

#include "harness/report/results.hpp"
#include "tasks/common/stats.hpp"

namespace bm::report {

// The gnuplot terminal used for PNG ("pngcairo" or "png"); throws with a
// hint (scripts/setup.sh installs gnuplot-nox) when gnuplot is missing.
std::string png_terminal();

// Writes <out_dir>/<stem>.{png,svg} plus the .dat and .gp it used; returns the
// image paths. Error bars on every point (±1 standard error; the paper-terms
// Figure 3 shows the 95% bootstrap interval of the ratio); models are told
// apart by colour and marker in the key, so no label can overlap another.
// Storage experiments draw two figures: average vs storage, and % of Routing's
// storage vs % of Routing's performance with the paper's stated points.
std::vector<std::string> render_plots(const ResultsView& v, const std::string& out_dir,
                                      const stats::PairedOptions& o = {});

}  // namespace bm::report
