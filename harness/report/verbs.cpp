#include "harness/report/verbs.hpp"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/report/claims.hpp"
#include "harness/report/compare.hpp"
#include "harness/report/plots.hpp"
#include "harness/report/tables.hpp"

namespace bm::report {
namespace {

void add_stat_options(CLI::App* sub, stats::PairedOptions& p) {
  sub->add_option("--seed", p.seed, "bootstrap seed (default 0; printed with every interval)");
  sub->add_option("--resamples", p.resamples, "bootstrap resamples (default 10000)");
}

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char buf[4096];
  if (!::getcwd(buf, sizeof buf)) return p;
  return std::string(buf) + "/" + p;
}

// "FILE:VARIANT" -> (FILE, VARIANT) when FILE exists and the whole string is not a file.
bool split_variant_ref(const std::string& s, std::string& file, std::string& variant) {
  if (bm::file_exists(s)) return false;
  for (size_t p = s.find(':'); p != std::string::npos; p = s.find(':', p + 1)) {
    std::string f = s.substr(0, p);
    if (bm::file_exists(f) && !bm::is_directory(f)) {
      file = f;
      variant = s.substr(p + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string claims_config_for(const std::string& results_path, const std::string& flag) {
  if (!flag.empty()) {
    if (!bm::file_exists(flag)) bm::fail("--config", "'" + flag + "' does not exist; pass the experiment TOML");
    return flag;
  }
  auto j = load_results(results_path);
  std::string name = j["experiment"].value("name", "");
  std::string recorded;
  if (j.contains("provenance") && j["provenance"].contains("config") && j["provenance"]["config"].is_object())
    recorded = j["provenance"]["config"].value("file", "");
  std::vector<std::string> tried;
  if (!recorded.empty() && recorded[0] == '/' && bm::file_exists(recorded)) return recorded;
  for (std::string start : {absolute(bm::parent_dir(results_path)), absolute(".")}) {
    for (std::string d = start;; d = bm::parent_dir(d)) {
      for (std::string cand : {recorded.empty() || recorded[0] == '/' ? std::string() : d + "/" + recorded,
                               d + "/configs/experiments/" + name + ".toml"}) {
        if (cand.empty()) continue;
        if (bm::file_exists(cand)) return cand;
      }
      if (d == "/" || d.empty()) break;
    }
  }
  bm::fail(results_path, "cannot find the experiment config with its claims (recorded: '" + recorded +
                             "', nor configs/experiments/" + name + ".toml above it); pass --config TOML");
}

void add_table_options(CLI::App& app) {
  struct Opts {
    std::string results, format = "md", out, plots;
    bool storage = false;
    TableOptions t;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("table", "Print the paper's table from a results.json (md, latex, csv)");
  sub->add_option("results", o->results, "results.json written by bitmerge run")->required();
  sub->add_option("--format", o->format, "md | latex | csv");
  sub->add_option("--out", o->out, "write to this file instead of stdout");
  sub->add_flag("--storage", o->storage, "also print the storage table");
  sub->add_option("--plots", o->plots, "also draw the figures (PNG + SVG, gnuplot) into this folder");
  sub->add_option("--alpha", o->t.alpha, "a best value with paired p >= alpha vs the runner-up is marked (default 0.05)");
  add_stat_options(sub, o->t.paired);
  sub->callback([o] {
    auto fmt = parse_format(o->format);
    auto view = view_of(load_results(o->results));
    std::string text = render_for_experiment(view, fmt, o->t);
    if (o->storage && view.table != "storage") text += "\n" + render_storage_table(view, fmt, o->t.paired);
    if (o->out.empty())
      std::cout << text;
    else
      bm::write_file_atomic(o->out, text);
    if (!o->plots.empty())
      for (auto& img : render_plots(view, o->plots, o->t.paired)) bm::log_info("wrote " + img);
  });
}

void add_compare_options(CLI::App& app) {
  struct Opts {
    std::string a, b, baseline, mode = "auto", markdown, format = "md";
    CompareOptions c;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "compare",
      "NEW BASELINE: regression check, exit 1 on a regression or a missing cell; FILE:VARIANT FILE:VARIANT: paired "
      "test of two variants (difference, CI, p)");
  sub->add_option("new", o->a, "new results.json, or FILE:VARIANT")->required();
  sub->add_option("baseline", o->b, "baseline results.json, or FILE:VARIANT");
  sub->add_option("--baseline", o->baseline, "baseline results.json (instead of the second argument)");
  sub->add_option("--mode", o->mode,
                  "auto (exact when provenance.model_sha256 match, else noise) | exact | noise | tolerance");
  sub->add_option("--tolerance", o->c.tolerance, "tolerance mode (and cells without a standard error): allowed drop in points (default 1.0)");
  sub->add_option("--sigmas", o->c.sigmas, "noise mode: a drop beyond this many standard errors of the difference is a regression (default 2)");
  sub->add_option("--alpha", o->c.alpha, "noise mode: judge by the paired test's p-value < alpha instead of --sigmas");
  sub->add_option("--markdown", o->markdown, "also write a Markdown summary (for a CI comment) to this file");
  sub->add_option("--test", o->c.paired.test, "variant comparison: auto (McNemar for 0/1 scores) | mcnemar | bootstrap");
  sub->add_option("--format", o->format, "variant comparison output: md | csv");
  add_stat_options(sub, o->c.paired);
  sub->callback([o] {
    std::string second = o->b;
    if (!o->baseline.empty()) {
      if (!second.empty()) bm::fail("--baseline", "give the baseline either as the second argument or with --baseline, not both");
      second = o->baseline;
    }
    if (second.empty()) bm::fail("compare", "needs two arguments: NEW BASELINE, or FILE:VARIANT FILE:VARIANT");
    std::string fa, va, fb, vb;
    bool ra = split_variant_ref(o->a, fa, va), rb = split_variant_ref(second, fb, vb);
    if (ra != rb)
      bm::fail("compare", "give two results files (regression check) or two FILE:VARIANT references (paired test), "
                          "not one of each ('" + o->a + "', '" + second + "')");
    if (ra) {
      auto f = parse_format(o->format);
      if (f == Format::Latex) bm::fail("--format", "variant comparison prints md or csv");
      auto x = view_of(load_results(fa));
      auto y = x;
      if (fb != fa) y = view_of(load_results(fb));
      if (f == Format::Markdown)
        std::cout << "A = " << va << " (" << fa << "), B = " << vb << " (" << fb << ")\n\n";
      std::cout << compare_variants(x, va, y, vb, o->c.paired, f);
      return;
    }
    o->c.mode = parse_compare_mode(o->mode);
    auto now = view_of(load_results(o->a));
    auto base = view_of(load_results(second));
    auto r = compare_results(now, base, o->c);
    std::cout << r.header << r.table;
    if (!o->markdown.empty()) bm::write_file_atomic(o->markdown, r.markdown);
    if (r.regressions > 0 || r.missing > 0) throw CLI::RuntimeError(1);
  });
}

void add_claims_options(CLI::App& app) {
  struct Opts {
    std::vector<std::string> results;
    std::string config, out;
    stats::PairedOptions p;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "claims", "Judge each experiment's [[claims]] on its results: holds / fails / inconclusive at this n; writes "
                "claims.md next to each results.json");
  sub->add_option("results", o->results, "results.json files (one per experiment)")->required();
  sub->add_option("--config", o->config, "experiment TOML with the [[claims]] (one results file only; default: the one it was run from)");
  sub->add_option("--out", o->out, "also write all reports into this one Markdown file");
  add_stat_options(sub, o->p);
  sub->callback([o] {
    if (!o->config.empty() && o->results.size() > 1) bm::fail("--config", "applies to a single results file");
    std::string all = "# Claims\n";
    int written = 0;
    for (auto& path : o->results) {
      auto view = view_of(load_results(path));
      std::string cfg = claims_config_for(path, o->config);
      auto claims = load_claims(cfg);
      if (claims.empty()) {
        bm::log_info(path + ": no [[claims]] in " + cfg + "; skipped");
        continue;
      }
      auto out = evaluate_claims(claims, view, o->p);
      std::string md = render_claims(view, out, o->p, path);
      std::string dest = bm::parent_dir(path) + "/claims.md";
      bm::write_file_atomic(dest, md);
      bm::log_info("wrote " + dest);
      all += "\n" + md;
      ++written;
      for (auto& c : out) std::cout << view.name << " claim " << c.claim.id << ": " << c.verdict << "\n";
    }
    if (!o->out.empty()) {
      if (written == 0) bm::fail("--out", "none of the results files has [[claims]] in its config");
      bm::write_file_atomic(o->out, all);
      bm::log_info("wrote " + o->out);
    }
  });
}

}  // namespace bm::report
