#include "harness/report/ablation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/strings.hpp"
#include "tasks/common/task.hpp"

namespace bm::report {
namespace {

std::string fmt(double x, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, x);
  return b;
}

using bm::csv_field;
using bm::latex_escape;

std::optional<double> own_average(const Row& r, const std::vector<std::string>& own) {
  double s = 0;
  for (auto& b : own) {
    auto it = r.measured.find(b);
    if (it == r.measured.end()) return std::nullopt;
    s += it->second;
  }
  return s / static_cast<double>(own.size());
}

std::optional<double> own_stderr(const Row& r, const std::vector<std::string>& own) {
  std::vector<double> ses;
  for (auto& b : own) {
    auto e = r.measured_stderr(b, own);
    if (auto d = r.detail.find(b); !e && d != r.detail.end() && d->second.has_items())
      e = 100.0 * stats::mean_stderr(d->second.items);  // lm-eval's mean_stderr of the item scores
    if (!e) return std::nullopt;
    ses.push_back(*e);
  }
  return stats::average_stderr(ses);
}

// Per own benchmark, the item scores of v, b, e on the base's items (matched by id).
struct Triple {
  std::vector<std::vector<double>> v, b, e;
};
std::optional<Triple> triple_items(const Row& v, const Row& b, const Row& e, const std::vector<std::string>& own) {
  Triple t;
  for (auto& bench : own) {
    auto dv = v.detail.find(bench), db = b.detail.find(bench), de = e.detail.find(bench);
    if (dv == v.detail.end() || db == b.detail.end() || de == e.detail.end()) return std::nullopt;
    if (!dv->second.has_items() || !db->second.has_items() || !de->second.has_items()) return std::nullopt;
    if (dv->second.metric != db->second.metric || de->second.metric != db->second.metric) return std::nullopt;
    std::map<std::string, double> mv, me;
    for (size_t i = 0; i < dv->second.ids.size(); ++i) mv[dv->second.ids[i]] = dv->second.items[i];
    for (size_t i = 0; i < de->second.ids.size(); ++i) me[de->second.ids[i]] = de->second.items[i];
    const auto& ids = db->second.ids;
    if (mv.size() != ids.size() || me.size() != ids.size()) return std::nullopt;
    std::vector<double> xv, xb, xe;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto iv = mv.find(ids[i]), ie = me.find(ids[i]);
      if (iv == mv.end() || ie == me.end()) return std::nullopt;
      xv.push_back(iv->second), xb.push_back(db->second.items[i]), xe.push_back(ie->second);
    }
    t.v.push_back(std::move(xv)), t.b.push_back(std::move(xb)), t.e.push_back(std::move(xe));
  }
  return t;
}

// Interval of G: percentile bootstrap, items drawn within each benchmark (the same draws for the
// three rows), benchmarks in order, SplitMix64 as stats::paired_compare_average.
// Resamples where expert == base on average are skipped (G undefined there).
void bootstrap_gain(const Triple& t, const stats::PairedOptions& o, AblationRow& row) {
  stats::SplitMix64 rng(o.seed);
  std::vector<double> g;
  g.reserve(static_cast<size_t>(o.resamples));
  const double K = static_cast<double>(t.v.size());
  for (int r = 0; r < o.resamples; ++r) {
    double sv = 0, sb = 0, se = 0;
    for (size_t k = 0; k < t.v.size(); ++k) {
      const size_t n = t.v[k].size();
      double xv = 0, xb = 0, xe = 0;
      for (size_t j = 0; j < n; ++j) {
        size_t i = rng.index(n);
        xv += t.v[k][i], xb += t.b[k][i], xe += t.e[k][i];
      }
      sv += xv / static_cast<double>(n), sb += xb / static_cast<double>(n), se += xe / static_cast<double>(n);
    }
    double den = (se - sb) / K;
    if (den != 0) g.push_back(((sv - sb) / K) / den);
  }
  // Standard error: the paired delta method on the same items (the bootstrap's
  // sd is unstable when resamples bring expert and base close, its percentiles are not):
  // z_i = (v_i - b_i) - G (e_i - b_i), Var(G) = sum_k sd_k(z)^2 / n_k / K^2 / (E - B)^2.
  double mv = 0, mb = 0, me = 0;
  for (size_t k = 0; k < t.v.size(); ++k) mv += stats::mean(t.v[k]), mb += stats::mean(t.b[k]), me += stats::mean(t.e[k]);
  if (me == mb) return;
  const double G = (mv - mb) / (me - mb);
  double var = 0;
  for (size_t k = 0; k < t.v.size(); ++k) {
    std::vector<double> z(t.v[k].size());
    for (size_t i = 0; i < z.size(); ++i) z[i] = (t.v[k][i] - t.b[k][i]) - G * (t.e[k][i] - t.b[k][i]);
    const double se = stats::mean_stderr(z);
    var += se * se;
  }
  row.gain_se = std::sqrt(var) / K / std::fabs((me - mb) / K);
  row.se_method = "paired";
  if (g.size() < 2) return;
  double tail = (1.0 - o.confidence) / 2.0 * 100.0;
  row.gain_lo = stats::percentile(g, tail);
  row.gain_hi = stats::percentile(g, 100.0 - tail);
}

std::string expert_domain(const std::string& expert) {
  auto d = bm::task_domains();
  if (std::find(d.begin(), d.end(), expert) != d.end()) return expert;
  bm::fail("ablation: expert '" + expert + "'",
           "is not a task domain (" + [&] {
             std::string s;
             for (auto& x : d) s += (s.empty() ? "" : ", ") + x;
             return s;
           }() + "); the ablation table reads an expert's domain from its name");
}

}  // namespace

std::pair<std::string, std::string> split_position(const std::string& p) {
  auto c = p.find(':');
  if (c == std::string::npos) return {p, "sign"};
  return {p.substr(0, c), p.substr(c + 1)};
}

Ablation compute_ablation(const ResultsView& v, const stats::PairedOptions& o) {
  Ablation a;
  a.resamples = o.resamples, a.seed = o.seed;
  const Row* base = nullptr;
  for (auto& r : v.rows)
    if (r.kind == "base") base = &r;
  if (!base)
    bm::fail("results " + v.name, "the ablation table needs a variant of kind \"base\" (the retained gain is measured "
                                  "from it); add one to the experiment config");
  a.base = base->name;
  std::map<std::string, const Row*> full;
  for (auto& r : v.rows) {
    if ((r.kind != "expert" && r.kind != "compressed") || r.expert.empty()) continue;
    if (std::find(a.experts.begin(), a.experts.end(), r.expert) == a.experts.end()) a.experts.push_back(r.expert);
    if (r.kind == "expert" && !full.count(r.expert)) full[r.expert] = &r;
  }
  const double params = base->storage_bytes ? *base->storage_bytes / 2.0 : 0.0;
  for (auto& x : a.experts) {
    if (!full.count(x))
      bm::fail("results " + v.name, "expert '" + x + "' has compressed variants but no full-expert row (kind \"expert\"); "
                                    "add one so its gain can be measured");
    const std::string dom = expert_domain(x);
    auto& own = a.own_benchmarks[x];
    for (auto& b : v.benchmarks)
      if (auto t = bm::find_task(b); t && t->domain() == dom) own.push_back(b);
    if (own.empty())
      bm::fail("results " + v.name, "no benchmark of the " + dom + " domain in the experiment's benchmarks; add one");
    const Row& e = *full.at(x);
    auto bavg = own_average(*base, own), eavg = own_average(e, own);
    if (bavg) a.base_average[x] = *bavg;
    if (eavg) a.expert_average[x] = *eavg;
    std::vector<const Row*> members = {&e};
    for (auto& r : v.rows)
      if (r.kind == "compressed" && r.expert == x) members.push_back(&r);
    for (const Row* r : members) {
      AblationRow ar;
      ar.variant = r->name, ar.expert = x;
      if (r->kind == "expert") {
        ar.position = "—", ar.scheme = "fp16", ar.bits_per_param = 16.0;
      } else {
        std::tie(ar.position, ar.scheme) = split_position(r->position);
        if (r->storage_bytes && base->storage_bytes && params > 0)
          ar.bits_per_param = 8.0 * (*r->storage_bytes - *base->storage_bytes) / params;
      }
      ar.own_average = own_average(*r, own);
      ar.own_stderr = own_stderr(*r, own);
      if (ar.own_average && bavg && eavg && *eavg != *bavg) {
        const double den = *eavg - *bavg;
        ar.gain = (*ar.own_average - *bavg) / den;
        if (r == &e) {
          ar.gain_se = 0.0, ar.gain_lo = 1.0, ar.gain_hi = 1.0, ar.se_method = "definition";
        } else if (auto t = triple_items(*r, *base, e, own)) {
          bootstrap_gain(*t, o, ar);
        } else {
          auto sv = own_stderr(*r, own), sb = own_stderr(*base, own), se = own_stderr(e, own);
          if (sv && sb && se) {
            const double g = *ar.gain;
            ar.gain_se = std::sqrt(*sv * *sv + g * g * *se * *se + (1 - g) * (1 - g) * *sb * *sb) / std::fabs(den);
            ar.gain_lo = g - 1.96 * *ar.gain_se, ar.gain_hi = g + 1.96 * *ar.gain_se;
            ar.se_method = "delta (independent)";
          }
        }
      }
      a.rows.push_back(std::move(ar));
    }
  }
  return a;
}

std::string render_ablation_table(const ResultsView& v, Format f, const stats::PairedOptions& o) {
  const Ablation a = compute_ablation(v, o);
  std::ostringstream os;
  const std::string dash = f == Format::Latex ? "--" : (f == Format::Csv ? "" : "—");
  auto opt = [&](const std::optional<double>& x, int prec = 2) { return x ? fmt(*x, prec) : dash; };
  if (f == Format::Csv) {
    os << "expert,variant,position,scheme,bits_per_param,own_average,own_stderr,base_own_average,expert_own_average,"
          "retained_gain,retained_gain_se,retained_gain_lo,retained_gain_hi,se_method,own_benchmarks\n";
    for (auto& r : a.rows) {
      std::string own;
      for (auto& b : a.own_benchmarks.at(r.expert)) own += (own.empty() ? "" : ";") + b;
      auto ba = a.base_average.count(r.expert) ? std::optional<double>(a.base_average.at(r.expert)) : std::nullopt;
      auto ea = a.expert_average.count(r.expert) ? std::optional<double>(a.expert_average.at(r.expert)) : std::nullopt;
      os << csv_field(r.expert) << "," << csv_field(r.variant) << "," << (r.position == "—" ? "" : r.position) << ","
         << csv_field(r.scheme) << "," << opt(r.bits_per_param, 4) << "," << opt(r.own_average) << ","
         << opt(r.own_stderr) << "," << opt(ba) << "," << opt(ea) << "," << opt(r.gain, 4) << ","
         << opt(r.gain_se, 4) << "," << opt(r.gain_lo, 4) << "," << opt(r.gain_hi, 4) << "," << r.se_method << ","
         << own << "\n";
    }
    return os.str();
  }
  const std::string pm = f == Format::Latex ? " $\\pm$ " : " ± ";
  if (f == Format::Markdown) {
    os << "### " << v.title << "\n\n"
       << "| Expert | Position | Scheme | Bits/param (delta) | Own-domain avg | Retained gain | 95% interval |\n"
       << "|---|---|---|---:|---:|---:|---:|\n";
  } else {
    os << "% " << v.title << "\n\\begin{tabular}{lllrrrr}\n\\toprule\n"
       << "Expert & Position & Scheme & Bits/param & Own-domain avg & Retained gain & 95\\% interval \\\\\n";
  }
  std::string last;
  for (auto& r : a.rows) {
    std::string avg = r.own_average ? fmt(*r.own_average) + (r.own_stderr ? pm + fmt(*r.own_stderr) : "") : dash;
    std::string g = r.gain ? fmt(*r.gain, 3) + (r.gain_se ? pm + fmt(*r.gain_se, 3) : "") : dash;
    if (r.gain && r.se_method == "delta (independent)") g += f == Format::Latex ? "$^\\dagger$" : "†";
    std::string iv = r.gain_lo && r.gain_hi ? "[" + fmt(*r.gain_lo, 3) + ", " + fmt(*r.gain_hi, 3) + "]" : dash;
    std::string bits = opt(r.bits_per_param, 3);
    if (f == Format::Markdown) {
      os << "| " << (r.expert == last ? "" : r.expert) << " | " << r.position << " | " << r.scheme << " | " << bits
         << " | " << avg << " | " << g << " | " << iv << " |\n";
    } else {
      if (r.expert != last) os << "\\midrule\n";
      os << (r.expert == last ? "" : latex_escape(r.expert)) << " & " << (r.position == "—" ? "--" : r.position)
         << " & " << latex_escape(r.scheme) << " & " << bits << " & " << avg << " & " << g << " & " << iv
         << " \\\\\n";
    }
    last = r.expert;
  }
  if (f == Format::Latex) os << "\\bottomrule\n\\end{tabular}\n";
  std::ostringstream note;
  note << "Retained gain = (variant's own-domain average − " << a.base << "'s) / (full expert's − " << a.base
       << "'s); own domain:";
  for (auto& x : a.experts) {
    note << " " << x << " = ";
    std::string s;
    for (auto& b : a.own_benchmarks.at(x)) s += (s.empty() ? "" : "+") + benchmark_label(b);
    note << s << " (base " << (a.base_average.count(x) ? fmt(a.base_average.at(x)) : "—") << ", expert "
         << (a.expert_average.count(x) ? fmt(a.expert_average.at(x)) : "—") << ");";
  }
  note << " ± = standard error by the paired delta method (variant, base and expert on the same items); interval = "
          "paired percentile bootstrap (the same draws for the three, "
       << a.resamples << " resamples, seed " << a.seed << ")";
  bool any_delta = false;
  for (auto& r : a.rows) any_delta |= r.se_method == "delta (independent)";
  if (any_delta) note << "; † = no per-item scores: delta method, the three cells' errors taken as independent";
  note << ". Bits/param = the stored task vector (grid storage accounting, docs/storage.md: 1 bit/entry for sign and bitdelta, "
          "2 for ternary, + one fp16 scale per matrix; embeddings, head and norms fp16) over all parameters; the full "
          "expert's delta is fp16 (16).";
  if (f == Format::Markdown) return os.str() + "\n" + note.str() + "\n";
  return "% " + note.str() + "\n" + os.str();
}

}  // namespace bm::report
