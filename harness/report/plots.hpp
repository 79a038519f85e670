// Figures with gnuplot (PNG via pngcairo, else png; and SVG):
//   storage  experiments -> Figure 3: average performance vs storage (GB)
//   routing  experiments -> Figure 2: per-benchmark bars, routing vs static merging
//   others               -> average per variant (bars)
#pragma once
#include <string>
#include <vector>

#include "harness/report/results.hpp"

namespace bm::report {

// The gnuplot terminal used for PNG ("pngcairo" or "png"); throws with a
// hint (scripts/setup.sh installs gnuplot-nox) when gnuplot is missing.
std::string png_terminal();

// Writes <out_dir>/<stem>.{png,svg} plus the .dat and .gp it used; returns the image paths.
std::vector<std::string> render_plots(const ResultsView& v, const std::string& out_dir);

}  // namespace bm::report
