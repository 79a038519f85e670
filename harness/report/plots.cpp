#include "harness/report/plots.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/report/ablation.hpp"
#include "harness/report/paired.hpp"
#include "harness/report/tables.hpp"

namespace bm::report {
namespace {

std::string capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return o + "\"";
}

void run_gnuplot(const std::string& script_path) {
  std::string cmd = "gnuplot " + script_path + " 2>&1";
  std::string out = capture(cmd + "; echo \"rc=$?\"");
  if (out.find("rc=0") == std::string::npos)
    bm::fail(script_path, "gnuplot failed: " + out.substr(0, 400) + "; check the script or the gnuplot install");
}

}  // namespace

std::string png_terminal() {
  std::string t = capture("gnuplot -e 'set terminal' 2>&1");
  if (t.empty() || t.find("svg") == std::string::npos)
    bm::fail("gnuplot", "not found or without the svg terminal; run scripts/setup.sh (installs gnuplot-nox)");
  if (t.find("pngcairo") != std::string::npos) return "pngcairo";
  if (t.find(" png ") != std::string::npos || t.find("\n       png") != std::string::npos) return "png";
  bm::fail("gnuplot", "has neither the pngcairo nor the png terminal; install gnuplot-nox (scripts/setup.sh)");
}

namespace {

// A gnuplot double-quoted string of two lines.
std::string title2(const std::string& a, const std::string& b) {
  std::string qa = quote(a), qb = quote(b);
  return qa.substr(0, qa.size() - 1) + "\\n" + qb.substr(1);
}

// Points of (nearly) equal x are spread sideways by a small step, in order,
// so that no marker hides another; returns the x to draw for each input.
std::vector<double> dodge(const std::vector<double>& xs) {
  std::vector<double> out = xs;
  if (xs.empty()) return out;
  double lo = *std::min_element(xs.begin(), xs.end()), hi = *std::max_element(xs.begin(), xs.end());
  double range = std::max(hi - lo, std::fabs(hi) * 0.1 + 1e-12);
  std::vector<bool> done(xs.size(), false);
  for (size_t i = 0; i < xs.size(); ++i) {
    if (done[i]) continue;
    std::vector<size_t> g;
    for (size_t j = i; j < xs.size(); ++j)
      if (!done[j] && std::fabs(xs[j] - xs[i]) <= 0.005 * range) g.push_back(j), done[j] = true;
    for (size_t k = 0; k < g.size(); ++k)
      out[g[k]] = xs[i] + 0.025 * range * (static_cast<double>(k) - (static_cast<double>(g.size()) - 1) / 2);
  }
  return out;
}

std::string num(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

// Writes <stem>.dat and renders <stem>.gp as PNG and SVG; returns the images.
std::vector<std::string> draw(const std::string& out_dir, const std::string& stem, const std::string& dat,
                              const std::string& gp, const std::string& png, const std::string& size) {
  bm::write_file_atomic(out_dir + "/" + stem + ".dat", dat);
  std::vector<std::string> images;
  for (auto [term, ext] : {std::pair<std::string, std::string>{png + " size " + size, "png"},
                          std::pair<std::string, std::string>{"svg size " + size, "svg"}}) {
    std::string img = stem + "." + ext;
    std::string script = "cd " + quote(out_dir) + "\nset terminal " + term + "\nset output '" + img + ".tmp'\n" + gp +
                         "set output\n";
    std::string sp = out_dir + "/" + stem + "." + ext + ".gp";
    bm::write_file_atomic(sp, script);
    run_gnuplot(sp);
    // gnuplot writes the image itself; publish it atomically under its final name.
    if (std::rename((out_dir + "/" + img + ".tmp").c_str(), (out_dir + "/" + img).c_str()) != 0)
      bm::fail(out_dir + "/" + img, "gnuplot wrote no image; run `gnuplot " + sp + "` to see why");
    images.push_back(out_dir + "/" + img);
  }
  return images;
}

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                         "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};
const int kPointTypes[] = {7, 5, 9, 11, 13, 15, 7, 5, 9, 11, 13, 15};

// Average and its standard error (points) of a row; the paper's average (no error) when not measured.
struct Pt {
  double y = 0, err = 0;
  bool measured = false;
};
std::optional<Pt> average_point(const ResultsView& v, const Row& r) {
  if (auto a = r.measured_average(v.benchmarks)) return Pt{*a, r.measured_stderr("average", v.benchmarks).value_or(0), true};
  if (auto p = r.paper_average(v.benchmarks)) return Pt{*p, 0, false};
  return std::nullopt;
}

}  // namespace

std::vector<std::string> render_plots(const ResultsView& v, const std::string& out_dir, const stats::PairedOptions& po) {
  bm::make_dirs(out_dir);
  std::string png = png_terminal();
  std::vector<std::string> images;
  // Every point is labelled through the key (one entry per model, its own colour
  // and marker), so labels never collide however close the points are.
  std::string head = "set encoding utf8\nset key outside right top box opaque\nset grid\n";
  const std::string err_note = "error bars: ±1 standard error";
  if (v.table == "ablation") {
    // One panel per expert: bits per parameter of the stored delta vs retained
    // own-domain gain; colour = scheme, marker = position (harness/report/ablation.hpp).
    const Ablation a = compute_ablation(v, po);
    std::string stem = v.name + "_bits_vs_retained_gain";
    std::vector<std::string> schemes, positions;
    for (auto& r : a.rows) {
      if (std::find(schemes.begin(), schemes.end(), r.scheme) == schemes.end()) schemes.push_back(r.scheme);
      if (std::find(positions.begin(), positions.end(), r.position) == positions.end()) positions.push_back(r.position);
    }
    auto idx = [](const std::vector<std::string>& xs, const std::string& x) {
      return static_cast<int>(std::find(xs.begin(), xs.end(), x) - xs.begin());
    };
    std::ostringstream dat, gp;
    dat << "# one block per variant: bits_per_param retained_gain stderr x_drawn (equal bits spread sideways)\n";
    gp << "set encoding utf8\nset grid\nset logscale x 2\nset offsets graph 0.08, graph 0.08, graph 0.05, graph 0.05\n"
       << "set multiplot layout 1," << a.experts.size() << " title "
       << title2(v.title, "error bars: ±1 standard error (paired delta method); colour = scheme, marker = position") << "\n";
    int block = 0;
    for (size_t ei = 0; ei < a.experts.size(); ++ei) {
      const std::string& x = a.experts[ei];
      std::ostringstream plot;
      int k = 0;
      std::vector<const AblationRow*> pts;
      std::vector<double> xs;
      for (auto& r : a.rows)
        if (r.expert == x && r.bits_per_param && r.gain) pts.push_back(&r), xs.push_back(*r.bits_per_param);
      auto drawn = dodge(xs);  // equal bits (ternary densities) spread sideways
      for (size_t pi = 0; pi < pts.size(); ++pi) {
        const AblationRow& r = *pts[pi];
        dat << "# " << r.variant << "\n" << num(*r.bits_per_param) << " " << num(*r.gain) << " "
            << num(r.gain_se.value_or(0)) << " " << num(drawn[pi]) << "\n\n\n";
        plot << (k ? ", \\\n     " : "plot ") << "'" << stem << ".dat' index " << block
             << " using 4:2:3 with yerrorbars pt " << kPointTypes[idx(positions, r.position) % 12]
             << " ps 1.4 lw 1.5 lc rgb '" << kColors[idx(schemes, r.scheme) % 12] << "' title "
             << quote(r.position == "—" ? "full expert (fp16)" : r.position + " " + r.scheme);
        ++block, ++k;
      }
      std::string bench;
      for (auto& b : a.own_benchmarks.at(x)) bench += (bench.empty() ? "" : "+") + benchmark_label(b);
      gp << "set title " << quote(x + " (own domain: " + bench + ")") << "\nset xlabel 'bits per parameter of the stored delta'\n"
         << "set ylabel 'retained own-domain gain'\n"
         << (ei + 1 == a.experts.size() ? "set key outside right top box opaque\n" : "unset key\n")
         << "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#888888'\n"
         << "set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead dt 3 lc rgb '#888888'\n"
         << (k ? plot.str() : "plot NaN notitle") << "\n";
    }
    gp << "unset multiplot\n";
    return draw(out_dir, stem, dat.str(), gp.str(), png, "1800,600");
  }
  if (v.table == "storage") {
    std::string stem = v.name + "_fig3_performance_vs_storage";
    const StorageUnit unit = storage_unit(v);
    std::ostringstream dat, plot;
    dat << "# one block per model: storage_" << unit.name
        << " average stderr x_drawn (equal storage spread sideways so no marker hides another)\n";
    std::vector<const Row*> rows;
    std::vector<Pt> pts;
    std::vector<double> xs;
    for (auto& r : v.rows) {
      auto a = average_point(v, r);
      if (!r.storage_bytes || !a) continue;
      rows.push_back(&r), pts.push_back(*a), xs.push_back(*r.storage_bytes / unit.bytes);
    }
    auto drawn = dodge(xs);
    int k = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      dat << "# " << rows[i]->name << "\n" << num(xs[i]) << " " << num(pts[i].y) << " " << num(pts[i].err) << " "
          << num(drawn[i]) << "\n\n\n";
      plot << (k ? ", \\\n     " : "plot ") << "'" << stem << ".dat' index " << k << " using 4:2:3 with yerrorbars pt "
           << kPointTypes[k % 12] << " ps 1.6 lw 1.5 lc rgb '" << kColors[k % 12] << "' title "
           << quote(rows[i]->name + (pts[i].measured ? "" : " (paper's average, not measured)"));
      ++k;
    }
    std::ostringstream gp;
    gp << head << "set title " << title2(v.title, err_note) << "\nset xlabel 'Storage (" << unit.name
       << "; points of equal storage are spread sideways)'\nset ylabel 'Average score'\nset offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1\n"
       << plot.str() << "\n";
    if (k > 0) {
      auto im = draw(out_dir, stem, dat.str(), gp.str(), png, "1300,650");
      images.insert(images.end(), im.begin(), im.end());
    }
    // The paper's terms: % of Routing's storage vs % of Routing's performance.
    const Row* routing = nullptr;
    for (auto& r : v.rows)
      if (r.kind == "routing") routing = &r;
    auto ra = routing ? routing->measured_average(v.benchmarks) : std::nullopt;
    if (routing && routing->storage_bytes && ra && *ra > 0) {
      std::string stem2 = v.name + "_fig3_percent_of_routing";
      std::ostringstream d2, p2;
      d2 << "# one block per model: storage_percent performance_percent low high x_drawn (interval: bootstrap, or +-1 se)\n";
      int j = 0;
      auto rse = routing->measured_stderr("average", v.benchmarks);
      struct P2 {
        const Row* r;
        double x, y, lo, hi;
      };
      std::vector<P2> ps;
      for (auto& r : v.rows) {
        auto a = r.measured_average(v.benchmarks);
        if (!r.storage_bytes || !a) continue;
        double x = 100.0 * *r.storage_bytes / *routing->storage_bytes, y = 100.0 * *a / *ra, lo = y, hi = y;
        if (&r != routing) {
          if (auto rr = paired_ratio(r, *routing, v.benchmarks, po)) {
            lo = rr->lo, hi = rr->hi;
          } else if (auto se = r.measured_stderr("average", v.benchmarks); se && rse) {
            double e = y * std::sqrt(std::pow(*se / std::max(*a, 1e-9), 2) + std::pow(*rse / *ra, 2));
            lo = y - e, hi = y + e;
          }
        }
        ps.push_back({&r, x, y, lo, hi});
      }
      std::vector<double> px;
      for (auto& p : ps) px.push_back(p.x);
      auto pd = dodge(px);
      for (size_t i = 0; i < ps.size(); ++i) {
        d2 << "# " << ps[i].r->name << "\n" << num(ps[i].x) << " " << num(ps[i].y) << " " << num(ps[i].lo) << " "
           << num(ps[i].hi) << " " << num(pd[i]) << "\n\n\n";
        p2 << (j ? ", \\\n     " : "plot ") << "'" << stem2 << ".dat' index " << j
           << " using 5:2:3:4 with yerrorbars pt " << kPointTypes[j % 12] << " ps 1.6 lw 1.5 lc rgb '"
           << kColors[j % 12] << "' title " << quote(ps[i].r->name + " (measured)");
        ++j;
      }
      // The paper's stated points (Section 4.6 / abstract), open markers.
      int pi = 0;
      for (auto& r : v.rows) {
        if (!r.paper_storage_percent || !r.paper_performance_percent) continue;
        d2 << "# paper: " << r.name << "\n" << num(*r.paper_storage_percent) << " " << num(*r.paper_performance_percent)
           << "\n\n\n";
        p2 << ", \\\n     '" << stem2 << ".dat' index " << j << " using 1:2 with points pt " << (pi == 0 ? 6 : 4)
           << " ps 2.2 lw 2 lc rgb 'black' title "
           << quote("paper: " + r.name + " " + num(*r.paper_performance_percent) + "% at " +
                    num(*r.paper_storage_percent) + "%");
        ++j, ++pi;
      }
      std::ostringstream g2;
      g2 << head << "set title " << title2(v.title + ": the paper's terms",
                                           "error bars: 95% bootstrap interval of the ratio (±1 se without item scores)")
         << "\nset xlabel \"% of Routing's storage (points of equal storage are spread sideways)\"\nset ylabel \"% of Routing's performance (average)\"\n"
         << "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1\n"
         << "set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc rgb '#888888'\n"
         << p2.str() << "\n";
      if (j > 0) {
        auto im = draw(out_dir, stem2, d2.str(), g2.str(), png, "1300,650");
        images.insert(images.end(), im.begin(), im.end());
      }
    }
    return images;
  }
  std::ostringstream dat, gp;
  std::string stem;
  if (v.table == "routing") {
    stem = v.name + "_fig2_routing_vs_merging";
    dat << "# benchmark";
    for (auto& r : v.rows) dat << " " << quote(r.name) << " " << quote(r.name + " se");
    dat << "\n";
    auto cols = v.benchmarks;
    cols.push_back("average");
    for (auto& b : cols) {
      dat << quote(benchmark_label(b));
      for (auto& r : v.rows) {
        std::optional<double> m = b == "average" ? r.measured_average(v.benchmarks) : std::nullopt;
        if (b != "average" && r.measured.count(b)) m = r.measured.at(b);
        auto se = r.measured_stderr(b, v.benchmarks);
        dat << " " << (m ? num(*m) : "NaN") << " " << (m && se ? num(*se) : "0");
      }
      dat << "\n";
    }
    gp << head << "set title " << title2(v.title, err_note)
       << "\nset style data histograms\nset style histogram errorbars gap 1 lw 1\n"
       << "set style fill solid 0.8 border -1\nset ylabel 'Score'\nset xtics rotate by -30\nset yrange [0:*]\n";
    for (size_t i = 0; i < v.rows.size(); ++i)
      gp << (i ? ", \\\n     " : "plot ") << "'" << stem << ".dat' using " << 2 + 2 * i << ":" << 3 + 2 * i
         << (i ? "" : ":xtic(1)") << " lc rgb '" << kColors[i % 12] << "' title " << quote(v.rows[i].name);
    gp << "\n";
  } else {
    stem = v.name + "_averages";
    dat << "# model average stderr\n";
    for (auto& r : v.rows) {
      auto a = r.measured_average(v.benchmarks);
      auto se = r.measured_stderr("average", v.benchmarks);
      dat << quote(r.name) << " " << (a ? num(*a) : "NaN") << " " << (a && se ? num(*se) : "0") << "\n";
    }
    gp << head << "set title " << title2(v.title, err_note)
       << "\nset style data histograms\nset style histogram errorbars gap 1 lw 1\nset style fill solid 0.8 border -1\n"
       << "set ylabel 'Average score'\nset xtics rotate by -30\nset yrange [0:*]\nunset key\n"
       << "plot '" << stem << ".dat' using 2:3:xtic(1) lc rgb '" << kColors[0] << "'\n";
  }
  auto im = draw(out_dir, stem, dat.str(), gp.str(), png, "1300,650");
  images.insert(images.end(), im.begin(), im.end());
  return images;
}

}  // namespace bm::report
