#include "harness/report/tables.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/report/ablation.hpp"
#include "harness/report/paired.hpp"
#include "harness/core/strings.hpp"
#include "tasks/common/task.hpp"

namespace bm::report {
namespace {

std::string fmt(double x, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, x);
  return b;
}

std::vector<std::string> columns(const ResultsView& v) {
  auto c = v.benchmarks;
  c.push_back("average");
  return c;
}

std::optional<double> measured(const ResultsView& v, const Row& r, const std::string& col) {
  if (col == "average") return r.measured_average(v.benchmarks);
  auto it = r.measured.find(col);
  if (it == r.measured.end()) return std::nullopt;
  return it->second;
}

std::optional<double> paper(const ResultsView& v, const Row& r, const std::string& col) {
  if (col == "average") return r.paper_average(v.benchmarks);
  auto it = r.paper.find(col);
  if (it == r.paper.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> groups_in_order(const ResultsView& v) {
  std::vector<std::string> g;
  for (auto& r : v.rows)
    if (std::find(g.begin(), g.end(), r.group) == g.end()) g.push_back(r.group);
  return g;
}

using bm::csv_field;
using bm::latex_escape;

}  // namespace

Format parse_format(const std::string& s) {
  if (s == "md" || s == "markdown") return Format::Markdown;
  if (s == "latex" || s == "tex") return Format::Latex;
  if (s == "csv") return Format::Csv;
  bm::fail("--format", "'" + s + "' is not a table format" + bm::did_you_mean(s, {"md", "latex", "csv"}) +
                           "; use md, latex or csv");
}

std::string benchmark_label(const std::string& b) {
  if (b == "average") return "Average";
  auto task = bm::find_task(b);  // the task owns its label
  return task ? task->label() : b;
}

std::map<std::string, std::string> best_rows(const ResultsView& v) {
  std::map<std::string, std::string> best;
  for (auto& col : columns(v)) {
    double bv = -INFINITY;
    for (auto& r : v.rows) {
      if (!v.best_within.empty() && r.group != v.best_within) continue;
      auto m = measured(v, r, col);
      if (m && *m > bv) bv = *m, best[col] = r.name;
    }
  }
  return best;
}

std::map<std::string, BestMark> best_marks(const ResultsView& v, const stats::PairedOptions& o) {
  std::map<std::string, BestMark> out;
  auto best = best_rows(v);
  for (auto& col : columns(v)) {
    if (!best.count(col)) continue;
    BestMark m;
    m.best = best.at(col);
    double rv = -INFINITY;
    for (auto& r : v.rows) {
      if (!v.best_within.empty() && r.group != v.best_within) continue;
      if (r.name == m.best) continue;
      auto x = measured(v, r, col);
      if (x && *x > rv) rv = *x, m.runner_up = r.name;
    }
    if (!m.runner_up.empty()) {
      auto pt = paired_test(*v.row(m.best), *v.row(m.runner_up), col, v.benchmarks, o);
      if (pt) m.p = pt->p;
    }
    out[col] = m;
  }
  return out;
}

std::string render_table(const ResultsView& v, Format f, const TableOptions& o) {
  auto cols = columns(v);
  auto marks = best_marks(v, o.paired);
  bool any_ns = false, any_se = false;
  auto cell = [&](const Row& r, const std::string& col) {
    auto m = measured(v, r, col);
    auto p = paper(v, r, col);
    auto se = r.measured_stderr(col, v.benchmarks);
    bool is_best = marks.count(col) && marks.at(col).best == r.name;
    bool ns = is_best && marks.at(col).not_significant(o.alpha);
    any_ns |= ns;
    any_se |= se.has_value();
    std::string ms = m ? fmt(*m) : "—";
    if (m && is_best) ms = f == Format::Latex ? "\\textbf{" + ms + "}" : "**" + ms + "**";
    if (ns) ms += f == Format::Latex ? "$^{\\approx}$" : "≈";
    if (m && se) ms += f == Format::Latex ? "{\\scriptsize$\\pm$" + fmt(*se) + "}" : " ±" + fmt(*se);
    std::string ps = p ? fmt(*p) : (f == Format::Latex ? "--" : "—");
    if (f == Format::Latex && !m) ms = "--";
    return ms + " / " + ps;
  };
  std::ostringstream os, body;
  if (f == Format::Markdown) {
    os << "### " << v.title << "\n\n";
    os << "| Model |";
    for (auto& c : cols) os << " " << benchmark_label(c) << " |";
    os << "\n|---|";
    for (size_t i = 0; i < cols.size(); ++i) os << "---:|";
    os << "\n";
    for (auto& g : groups_in_order(v)) {
      if (!g.empty()) {
        os << "| *" << g << "* |";
        for (size_t i = 0; i < cols.size(); ++i) os << " |";
        os << "\n";
      }
      for (auto& r : v.rows) {
        if (r.group != g) continue;
        os << "| " << r.name << " |";
        for (auto& c : cols) os << " " << cell(r, c) << " |";
        os << "\n";
      }
    }
  } else if (f == Format::Latex) {
    os << "\\begin{tabular}{l" << std::string(cols.size(), 'c') << "}\n\\toprule\n";
    os << "Model";
    for (auto& c : cols) os << " & " << benchmark_label(c);
    os << " \\\\\n";
    for (auto& g : groups_in_order(v)) {
      os << "\\midrule\n";
      if (!g.empty())
        os << "\\multicolumn{" << cols.size() + 1 << "}{l}{\\textit{" << latex_escape(g) << "}} \\\\\n";
      for (auto& r : v.rows) {
        if (r.group != g) continue;
        os << latex_escape(r.name);
        for (auto& c : cols) os << " & " << cell(r, c);
        os << " \\\\\n";
      }
    }
    os << "\\bottomrule\n\\end{tabular}\n";
  } else {
    os << "group,model";
    for (auto& c : cols) os << "," << c << "," << c << "_stderr," << c << "_paper";
    os << ",best_in,best_not_significant_in\n";
    for (auto& r : v.rows) {
      os << csv_field(r.group) << "," << csv_field(r.name);
      std::string best_in, ns_in;
      for (auto& c : cols) {
        auto m = measured(v, r, c);
        auto p = paper(v, r, c);
        auto se = r.measured_stderr(c, v.benchmarks);
        os << "," << (m ? fmt(*m) : "") << "," << (m && se ? fmt(*se) : "") << "," << (p ? fmt(*p) : "");
        if (marks.count(c) && marks.at(c).best == r.name) {
          best_in += (best_in.empty() ? "" : ";") + c;
          if (marks.at(c).not_significant(o.alpha)) ns_in += (ns_in.empty() ? "" : ";") + c;
        }
      }
      os << "," << best_in << "," << ns_in << "\n";
    }
    return os.str();
  }
  std::string note = std::string(any_se ? "measured ± standard error" : "measured") + " / paper; best measured value" +
                     (v.best_within.empty() ? "" : " among " + v.best_within) + " in bold";
  if (any_ns)
    note += std::string(f == Format::Latex ? "; $\\approx$" : "; ≈") +
            " = not significantly better than the runner-up (paired test, p ≥ " + fmt(o.alpha) + ")";
  if (!v.backend.empty() && v.backend != "model") note += "; backend=" + v.backend + " (not model scores)";
  if (f == Format::Markdown) return os.str() + "\n" + note + ".\n";
  return "% " + v.title + " (" + note + ")\n" + os.str();
}

std::string render_paper_diff_table(const ResultsView& v, Format f, const TableOptions& o) {
  auto cols = columns(v);
  bool any = false;
  for (auto& r : v.rows)
    for (auto& c : cols) any |= measured(v, r, c) && paper(v, r, c);
  if (!any) return "";
  std::ostringstream os;
  int far = 0, cells = 0;
  auto cell = [&](const Row& r, const std::string& c) -> std::string {
    auto m = measured(v, r, c);
    auto p = paper(v, r, c);
    if (!m || !p) return f == Format::Csv ? "," : (f == Format::Latex ? "--" : "—");
    double d = *m - *p;
    auto se = r.measured_stderr(c, v.benchmarks);
    ++cells;
    std::string z;
    bool out = false;
    if (se && *se > 0) {
      double zz = d / *se;
      out = std::fabs(zz) > o.z;
      far += out;
      z = fmt(zz, 1);
    }
    if (f == Format::Csv) return (d >= 0 ? "+" : "") + fmt(d) + "," + z;
    std::string s = (d >= 0 ? "+" : "") + fmt(d) + (z.empty() ? "" : f == Format::Latex ? " (" + z + "$\\sigma$)" : " (" + z + "σ)");
    if (out) s = f == Format::Latex ? "\\textbf{" + s + "}" : "**" + s + "**";
    return s;
  };
  if (f == Format::Csv) {
    os << "group,model";
    for (auto& c : cols) os << "," << c << "_minus_paper," << c << "_z";
    os << "\n";
    for (auto& r : v.rows) {
      os << csv_field(r.group) << "," << csv_field(r.name);
      for (auto& c : cols) os << "," << cell(r, c);
      os << "\n";
    }
    return os.str();
  }
  if (f == Format::Markdown) {
    os << "Measured − paper, points (in measured standard errors):\n\n| Model |";
    for (auto& c : cols) os << " " << benchmark_label(c) << " |";
    os << "\n|---|";
    for (size_t i = 0; i < cols.size(); ++i) os << "---:|";
    os << "\n";
  } else {
    os << "% measured - paper (measured standard errors)\n\\begin{tabular}{l" << std::string(cols.size(), 'c')
       << "}\n\\toprule\nModel";
    for (auto& c : cols) os << " & " << benchmark_label(c);
    os << " \\\\\n\\midrule\n";
  }
  for (auto& r : v.rows) {
    bool has = false;
    for (auto& c : cols) has |= paper(v, r, c).has_value();
    if (!has) continue;
    if (f == Format::Markdown) {
      os << "| " << r.name << " |";
      for (auto& c : cols) os << " " << cell(r, c) << " |";
      os << "\n";
    } else {
      os << latex_escape(r.name);
      for (auto& c : cols) os << " & " << cell(r, c);
      os << " \\\\\n";
    }
  }
  if (f == Format::Latex) return os.str() + "\\bottomrule\n\\end{tabular}\n";
  os << "\nBold: the paper's value lies more than " << fmt(o.z, 1) << " measured standard errors away (" << far
     << " of " << cells << " cells); σ = the measured cell's standard error (the paper gives none).\n";
  return os.str();
}

std::string render_storage_table(const ResultsView& v, Format f, const stats::PairedOptions& o) {
  const Row* routing = nullptr;
  for (auto& r : v.rows)
    if (r.kind == "routing") routing = &r;
  auto rs = routing && routing->storage_bytes ? routing->storage_bytes : std::nullopt;
  auto rp = routing ? routing->measured_average(v.benchmarks) : std::nullopt;
  std::ostringstream os;
  const StorageUnit unit = storage_unit(v);
  std::vector<std::string> head = {"Model", "Storage (" + unit.name + ")", "% of Routing storage", "Paper % storage",
                                   "Average", "% of Routing performance", "95% interval", "Paper % performance"};
  if (f == Format::Markdown) {
    os << "### Storage: " << v.title << "\n\n|";
    for (auto& h : head) os << " " << h << " |";
    os << "\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  } else if (f == Format::Latex) {
    os << "\\begin{tabular}{lrrrrrrr}\n\\toprule\nModel & Storage (" << unit.name << ") & \\% Routing storage & Paper \\% & Average & "
          "\\% Routing perf. & 95\\% interval & Paper \\% perf. \\\\\n\\midrule\n";
  } else {
    os << "model,storage_bytes,storage_percent_of_routing,paper_storage_percent,average,performance_percent_of_routing,"
          "performance_percent_lo,performance_percent_hi,paper_performance_percent\n";
  }
  for (auto& r : v.rows) {
    std::string gb = r.storage_bytes ? fmt(*r.storage_bytes / unit.bytes) : "";
    std::string sp = r.storage_bytes && rs ? fmt(100.0 * *r.storage_bytes / *rs) : "";
    std::string pp = r.paper_storage_percent ? fmt(*r.paper_storage_percent) : "";
    auto avg = r.measured_average(v.benchmarks);
    std::string a = avg ? fmt(*avg) : "";
    std::string perf = avg && rp && *rp > 0 ? fmt(100.0 * *avg / *rp) : "";
    std::string lo, hi;
    if (routing && &r != routing && avg && rp && *rp > 0)
      if (auto rr = paired_ratio(r, *routing, v.benchmarks, o)) lo = fmt(rr->lo), hi = fmt(rr->hi);
    std::string ppf = r.paper_performance_percent ? fmt(*r.paper_performance_percent) : "";
    if (f == Format::Csv) {
      os << csv_field(r.name) << "," << (r.storage_bytes ? fmt(*r.storage_bytes, 0) : "") << "," << sp << "," << pp
         << "," << a << "," << perf << "," << lo << "," << hi << "," << ppf << "\n";
    } else {
      auto d = [&](const std::string& s) { return s.empty() ? std::string(f == Format::Latex ? "--" : "—") : s; };
      std::string sep = f == Format::Latex ? " & " : " | ";
      std::string iv = lo.empty() ? "" : "[" + lo + ", " + hi + "]";
      os << (f == Format::Markdown ? "| " : "") << (f == Format::Latex ? latex_escape(r.name) : r.name) << sep
         << d(gb) << sep << d(sp) << sep << d(pp) << sep << d(a) << sep << d(perf) << sep << d(iv) << sep << d(ppf)
         << (f == Format::Latex ? " \\\\\n" : " |\n");
    }
  }
  if (f == Format::Latex) os << "\\bottomrule\n\\end{tabular}\n";
  if (f == Format::Markdown)
    os << "\nStorage counted analytically: fp16 = 2 bytes/parameter; a 1-bit matrix = numel/8 bytes + 2 bytes "
          "scale (see results/README.md). Interval: paired bootstrap of the ratio of averages ("
       << o.resamples << " resamples, seed " << o.seed << ").\n";
  return os.str();
}

std::string render_router_table(const ResultsView& v, Format f) {
  std::ostringstream os;
  bool any = false;
  for (auto& r : v.rows) any |= !r.router_accuracy.empty();
  if (!any) return "";
  auto cell = [&](const Row& r, const std::string& b) {
    auto it = r.router_accuracy.find(b);
    return it == r.router_accuracy.end() ? std::string(f == Format::Csv ? "" : "—") : fmt(it->second);
  };
  if (f == Format::Markdown) {
    os << "Router accuracy (% of items routed to the expert of the benchmark's domain):\n\n| Model |";
    for (auto& b : v.benchmarks) os << " " << benchmark_label(b) << " |";
    os << "\n|---|";
    for (size_t i = 0; i < v.benchmarks.size(); ++i) os << "---:|";
    os << "\n";
  } else if (f == Format::Latex) {
    os << "% router accuracy (%)\n\\begin{tabular}{l" << std::string(v.benchmarks.size(), 'c') << "}\n\\toprule\nModel";
    for (auto& b : v.benchmarks) os << " & " << benchmark_label(b);
    os << " \\\\\n\\midrule\n";
  } else {
    os << "model";
    for (auto& b : v.benchmarks) os << "," << b << "_router_accuracy";
    os << "\n";
  }
  for (auto& r : v.rows) {
    if (r.router_accuracy.empty()) continue;
    if (f == Format::Markdown) {
      os << "| " << r.name << " |";
      for (auto& b : v.benchmarks) os << " " << cell(r, b) << " |";
      os << "\n";
    } else if (f == Format::Latex) {
      os << latex_escape(r.name);
      for (auto& b : v.benchmarks) os << " & " << cell(r, b);
      os << " \\\\\n";
    } else {
      os << csv_field(r.name);
      for (auto& b : v.benchmarks) os << "," << cell(r, b);
      os << "\n";
    }
  }
  if (f == Format::Latex) os << "\\bottomrule\n\\end{tabular}\n";
  return os.str();
}

std::string render_for_experiment(const ResultsView& v, Format f, const TableOptions& o) {
  if (v.table == "ablation") {  // harness/report/ablation.hpp; then the per-benchmark scores
    std::string a = render_ablation_table(v, f, o.paired);
    return f == Format::Csv ? a : a + "\n" + render_table(v, f, o);
  }
  std::string out = render_table(v, f, o);
  if (f != Format::Csv) {
    std::string d = render_paper_diff_table(v, f, o);
    if (!d.empty()) out += "\n" + d;
  }
  if (v.table == "storage") out += "\n" + render_storage_table(v, f, o.paired);
  std::string router = render_router_table(v, f);
  if (!router.empty() && f != Format::Csv) out += "\n" + router;
  return out;
}

}  // namespace bm::report
