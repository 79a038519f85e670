#include "harness/report/tables.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/core/error.hpp"

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

std::string latex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '%' || c == '&' || c == '#' || c == '$') o += '\\';
    o += c;
  }
  return o;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

Format parse_format(const std::string& s) {
  if (s == "md" || s == "markdown") return Format::Markdown;
  if (s == "latex" || s == "tex") return Format::Latex;
  if (s == "csv") return Format::Csv;
  bm::fail("--format", "'" + s + "' is not a table format" + bm::did_you_mean(s, {"md", "latex", "csv"}) +
                           "; use md, latex or csv");
}

std::string benchmark_label(const std::string& b) {
  static const std::map<std::string, std::string> l = {
      {"mmlu", "MMLU"}, {"hellaswag", "HellaSwag"}, {"truthfulqa", "TruthfulQA"}, {"gsm8k", "GSM8K"},
      {"math", "MATH"}, {"mbpp", "MBPP"},           {"humaneval", "HumanEval"},   {"average", "Average"}};
  auto it = l.find(b);
  return it == l.end() ? b : it->second;
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

std::string render_table(const ResultsView& v, Format f) {
  auto cols = columns(v);
  auto best = best_rows(v);
  auto cell = [&](const Row& r, const std::string& col, bool mark_bold) {
    auto m = measured(v, r, col);
    auto p = paper(v, r, col);
    bool is_best = best.count(col) && best.at(col) == r.name;
    std::string ms = m ? fmt(*m) : "—";
    if (m && is_best && mark_bold) ms = f == Format::Latex ? "\\textbf{" + ms + "}" : "**" + ms + "**";
    std::string ps = p ? fmt(*p) : (f == Format::Latex ? "--" : "—");
    if (f == Format::Latex && !m) ms = "--";
    return ms + " / " + ps;
  };
  std::ostringstream os;
  std::string note = "measured / paper; best measured value" +
                     std::string(v.best_within.empty() ? "" : " among " + v.best_within) + " in bold";
  if (!v.backend.empty() && v.backend != "model") note += "; backend=" + v.backend + " (not model scores)";
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
        for (auto& c : cols) os << " " << cell(r, c, true) << " |";
        os << "\n";
      }
    }
    os << "\n" << note << ".\n";
  } else if (f == Format::Latex) {
    os << "% " << v.title << " (" << note << ")\n";
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
        for (auto& c : cols) os << " & " << cell(r, c, true);
        os << " \\\\\n";
      }
    }
    os << "\\bottomrule\n\\end{tabular}\n";
  } else {
    os << "group,model";
    for (auto& c : cols) os << "," << c << "," << c << "_paper";
    os << ",best_in\n";
    for (auto& r : v.rows) {
      os << csv_field(r.group) << "," << csv_field(r.name);
      std::string best_in;
      for (auto& c : cols) {
        auto m = measured(v, r, c);
        auto p = paper(v, r, c);
        os << "," << (m ? fmt(*m) : "") << "," << (p ? fmt(*p) : "");
        if (best.count(c) && best.at(c) == r.name) best_in += (best_in.empty() ? "" : ";") + c;
      }
      os << "," << best_in << "\n";
    }
  }
  return os.str();
}

std::string render_storage_table(const ResultsView& v, Format f) {
  const Row* routing = nullptr;
  for (auto& r : v.rows)
    if (r.kind == "routing") routing = &r;
  auto rs = routing && routing->storage_bytes ? routing->storage_bytes : std::nullopt;
  auto rp = routing ? routing->measured_average(v.benchmarks) : std::nullopt;
  std::ostringstream os;
  const StorageUnit unit = storage_unit(v);
  std::vector<std::string> head = {"Model", "Storage (" + unit.name + ")", "% of Routing storage", "Paper % storage",
                                   "Average", "% of Routing performance"};
  if (f == Format::Markdown) {
    os << "### Storage: " << v.title << "\n\n|";
    for (auto& h : head) os << " " << h << " |";
    os << "\n|---|---:|---:|---:|---:|---:|\n";
  } else if (f == Format::Latex) {
    os << "\\begin{tabular}{lrrrrr}\n\\toprule\nModel & Storage (" << unit.name << ") & \\% Routing storage & Paper \\% & Average & "
          "\\% Routing perf. \\\\\n\\midrule\n";
  } else {
    os << "model,storage_bytes,storage_percent_of_routing,paper_storage_percent,average,performance_percent_of_routing\n";
  }
  for (auto& r : v.rows) {
    std::string gb = r.storage_bytes ? fmt(*r.storage_bytes / unit.bytes) : "";
    std::string sp = r.storage_bytes && rs ? fmt(100.0 * *r.storage_bytes / *rs) : "";
    std::string pp = r.paper_storage_percent ? fmt(*r.paper_storage_percent) : "";
    auto avg = r.measured_average(v.benchmarks);
    std::string a = avg ? fmt(*avg) : "";
    std::string perf = avg && rp && *rp > 0 ? fmt(100.0 * *avg / *rp) : "";
    if (f == Format::Csv) {
      os << csv_field(r.name) << "," << (r.storage_bytes ? fmt(*r.storage_bytes, 0) : "") << "," << sp << "," << pp
         << "," << a << "," << perf << "\n";
    } else {
      auto d = [&](const std::string& s) { return s.empty() ? std::string(f == Format::Latex ? "--" : "—") : s; };
      std::string sep = f == Format::Latex ? " & " : " | ";
      os << (f == Format::Markdown ? "| " : "") << (f == Format::Latex ? latex_escape(r.name) : r.name) << sep
         << d(gb) << sep << d(sp) << sep << d(pp) << sep << d(a) << sep << d(perf)
         << (f == Format::Latex ? " \\\\\n" : " |\n");
    }
  }
  if (f == Format::Latex) os << "\\bottomrule\n\\end{tabular}\n";
  if (f == Format::Markdown)
    os << "\nStorage counted analytically: fp16 = 2 bytes/parameter; a 1-bit matrix = numel/8 bytes + 2 bytes "
          "scale (see results/README.md).\n";
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

std::string render_for_experiment(const ResultsView& v, Format f) {
  std::string out = render_table(v, f);
  if (v.table == "storage") out += "\n" + render_storage_table(v, f);
  std::string router = render_router_table(v, f);
  if (!router.empty() && f != Format::Csv) out += "\n" + router;
  return out;
}

}  // namespace bm::report
