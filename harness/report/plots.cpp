#include "harness/report/plots.hpp"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
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

std::vector<std::string> render_plots(const ResultsView& v, const std::string& out_dir) {
  bm::make_dirs(out_dir);
  std::string png = png_terminal();
  std::ostringstream dat, gp;
  std::string stem;
  std::string head = "set encoding utf8\nset key outside right top\nset grid ytics\n";
  if (v.table == "storage") {
    stem = v.name + "_fig3_performance_vs_storage";
    const StorageUnit unit = storage_unit(v);
    dat << "# model storage_" << unit.name << " average\n";
    for (auto& r : v.rows) {
      auto a = r.measured_average(v.benchmarks);
      if (!a) a = r.paper_average(v.benchmarks);  // paper value when not yet measured
      if (!r.storage_bytes || !a) continue;
      dat << quote(r.name) << " " << *r.storage_bytes / unit.bytes << " " << *a << "\n";
    }
    gp << head << "set title " << quote(v.title) << "\nset xlabel 'Storage (" << unit.name << ")'\nset ylabel 'Average score'\n"
       << "set offsets graph 0.08, graph 0.2, graph 0.1, graph 0.1\nunset key\n"
       << "plot '" << stem << ".dat' using 2:3 with points pt 7 ps 1.5 lc rgb '#1f77b4', "
       << "'' using 2:3:1 with labels offset 0,1 font ',9'\n";
  } else if (v.table == "routing") {
    stem = v.name + "_fig2_routing_vs_merging";
    dat << "benchmark";
    for (auto& r : v.rows) dat << " " << quote(r.name);
    dat << "\n";
    auto cols = v.benchmarks;
    cols.push_back("average");
    for (auto& b : cols) {
      dat << quote(benchmark_label(b));
      for (auto& r : v.rows) {
        std::optional<double> m = b == "average" ? r.measured_average(v.benchmarks) : std::nullopt;
        if (b != "average" && r.measured.count(b)) m = r.measured.at(b);
        dat << " " << (m ? std::to_string(*m) : "NaN");
      }
      dat << "\n";
    }
    gp << head << "set title " << quote(v.title) << "\nset style data histograms\nset style histogram cluster gap 1\n"
       << "set style fill solid 0.8 border -1\nset ylabel 'Score'\nset xtics rotate by -30\nset key autotitle columnhead\n"
       << "plot for [i=2:" << v.rows.size() + 1 << "] '" << stem << ".dat' using i:xtic(1)\n";
  } else {
    stem = v.name + "_averages";
    dat << "# model average\n";
    for (auto& r : v.rows) {
      auto a = r.measured_average(v.benchmarks);
      dat << quote(r.name) << " " << (a ? std::to_string(*a) : "NaN") << "\n";
    }
    gp << head << "set title " << quote(v.title) << "\nset style data histograms\nset style fill solid 0.8 border -1\n"
       << "set ylabel 'Average score'\nset xtics rotate by -30\nunset key\n"
       << "plot '" << stem << ".dat' using 2:xtic(1)\n";
  }
  bm::write_file_atomic(out_dir + "/" + stem + ".dat", dat.str());
  std::vector<std::string> images;
  for (auto [term, ext] : {std::pair<std::string, std::string>{png + " size 1000,600", "png"},
                          std::pair<std::string, std::string>{"svg size 1000,600", "svg"}}) {
    std::string img = stem + "." + ext;
    std::string script = "cd " + quote(out_dir) + "\nset terminal " + term + "\nset output '" + img + ".tmp'\n" +
                         gp.str() + "set output\n";
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

}  // namespace bm::report
