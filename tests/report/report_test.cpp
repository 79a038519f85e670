// Tables, plots and compare from a synthetic results.json built here: the
// layout (groups, columns, best marks, paper vs measured) is checked cell by cell.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/report/compare.hpp"
#include "harness/report/plots.hpp"
#include "harness/report/results.hpp"
#include "harness/report/tables.hpp"
#include "tests/common/tmpdir.hpp"

using namespace bm::report;
using nlohmann::json;

namespace {
const std::vector<std::string> kB = {"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "mbpp", "humaneval"};

// Scores chosen so that the best merging method differs per column.
json synthetic_results(const std::string& table = "main") {
  json j;
  j["schema"] = kResultsSchemaName;
  j["schema_version"] = kResultsSchemaVersion;
  j["experiment"] = {{"name", "t2"}, {"title", "Table 2: test"}, {"table", table}, {"family", "f"},
                     {"benchmarks", kB}, {"best_within", "Merging methods"}, {"backend", "model"}};
  struct V {
    const char *name, *group, *kind;
    double base;
    double storage;
  };
  std::vector<V> vs = {{"Chat", "Finetuned", "expert", 50, 13.5e9},
                       {"1bit-Chat", "Compressed experts", "compressed", 40, 15e9},
                       {"TIES", "Merging methods", "merge", 30, 13.5e9},
                       {"Routing", "Routing", "routing", 45, 40.5e9},
                       {"1bit-Merging", "Merging methods", "onebit_merging", 35, 27e9}};
  j["variants"] = json::array();
  j["cells"] = json::array();
  for (auto& v : vs) {
    json vj = {{"name", v.name}, {"group", v.group}, {"kind", v.kind}, {"storage_bytes", v.storage}};
    if (std::string(v.name) == "1bit-Merging") vj["paper"] = {{"average", 36.74}, {"gsm8k", 20.5}};
    if (std::string(v.name) == "1bit-Merging") vj["paper_storage_percent"] = 66.25;
    j["variants"].push_back(vj);
    for (size_t i = 0; i < kB.size(); ++i) {
      double s = v.base + static_cast<double>(i);
      if (std::string(v.name) == "TIES" && kB[i] == "mbpp") s = 99;  // TIES best on MBPP only
      if (std::string(v.name) == "Chat" && kB[i] == "humaneval") continue;  // a missing cell
      j["cells"].push_back({{"variant", v.name}, {"benchmark", kB[i]}, {"status", "done"}, {"score", s}});
    }
  }
  j["cells"].push_back({{"variant", "Chat"}, {"benchmark", "humaneval"}, {"status", "missing"}});
  return j;
}

std::string line_with(const std::string& text, const std::string& start) {
  size_t p = text.find("\n" + start);
  if (p == std::string::npos) return "";
  size_t e = text.find('\n', p + 1);
  return text.substr(p + 1, e - p - 1);
}
}  // namespace

TEST(Tables, MarkdownLayoutAndBestMarks) {
  auto v = view_of(synthetic_results());
  std::string md = render_table(v, Format::Markdown);
  EXPECT_NE(md.find("| Model | MMLU | HellaSwag | TruthfulQA | GSM8K | MATH | MBPP | HumanEval | Average |"),
            std::string::npos)
      << md;
  // Groups in order of first appearance, each followed by its rows.
  size_t f = md.find("| *Finetuned*"), c = md.find("| *Compressed experts*"), m = md.find("| *Merging methods*"),
         r = md.find("| *Routing*");
  ASSERT_NE(f, std::string::npos);
  EXPECT_LT(f, c);
  EXPECT_LT(c, m);
  EXPECT_LT(m, r);
  EXPECT_LT(md.find("| 1bit-Merging"), r) << "1bit-Merging belongs under Merging methods";
  // 1bit-Merging: 35..41, average 38; best among merging methods except MBPP (TIES 99).
  EXPECT_EQ(line_with(md, "| 1bit-Merging"),
            "| 1bit-Merging | **35.00** / — | **36.00** / — | **37.00** / — | **38.00** / 20.50 | **39.00** / — | "
            "40.00 / — | **41.00** / — | 38.00 / 36.74 |");
  // TIES: average (30+31+32+33+34+99+36)/7 = 42.14 is the best average.
  EXPECT_EQ(line_with(md, "| TIES"),
            "| TIES | 30.00 / — | 31.00 / — | 32.00 / — | 33.00 / — | 34.00 / — | **99.00** / — | 36.00 / — | "
            "**42.14** / — |");
  // Chat is better than all but outside best_within: never bold; its missing cell shows a dash, no average.
  EXPECT_EQ(line_with(md, "| Chat"),
            "| Chat | 50.00 / — | 51.00 / — | 52.00 / — | 53.00 / — | 54.00 / — | 55.00 / — | — / — | — / — |");
}

TEST(Tables, LatexAndCsv) {
  auto v = view_of(synthetic_results());
  std::string tex = render_table(v, Format::Latex);
  EXPECT_NE(tex.find("\\begin{tabular}{lcccccccc}"), std::string::npos);
  EXPECT_NE(tex.find("\\multicolumn{9}{l}{\\textit{Merging methods}} \\\\"), std::string::npos);
  EXPECT_NE(tex.find("TIES & 30.00 / -- & 31.00 / -- & 32.00 / -- & 33.00 / -- & 34.00 / -- & \\textbf{99.00} / -- & "
                     "36.00 / -- & \\textbf{42.14} / -- \\\\"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("Chat & 50.00 / -- & 51.00 / -- & 52.00 / -- & 53.00 / -- & 54.00 / -- & 55.00 / -- & -- / -- & -- / -- \\\\"),
            std::string::npos) << tex;
  std::string csv = render_table(v, Format::Csv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "group,model,mmlu,mmlu_stderr,mmlu_paper,hellaswag,hellaswag_stderr,hellaswag_paper,truthfulqa,"
            "truthfulqa_stderr,truthfulqa_paper,gsm8k,gsm8k_stderr,gsm8k_paper,math,math_stderr,math_paper,mbpp,"
            "mbpp_stderr,mbpp_paper,humaneval,humaneval_stderr,humaneval_paper,average,average_stderr,average_paper,"
            "best_in,best_not_significant_in");
  EXPECT_NE(csv.find("\nMerging methods,1bit-Merging,35.00,,,36.00,,,37.00,,,38.00,,20.50,39.00,,,40.00,,,41.00,,,"
                     "38.00,,36.74,mmlu;hellaswag;truthfulqa;gsm8k;math;humaneval,\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\nFinetuned,Chat,50.00,,,51.00,,,52.00,,,53.00,,,54.00,,,55.00,,,,,,,,,,\n"), std::string::npos) << csv;
}

TEST(Tables, StorageTableRelativeToRouting) {
  auto v = view_of(synthetic_results("storage"));
  std::string csv = render_storage_table(v, Format::Csv);
  // 1bit-Merging: 27/40.5 = 66.67% of storage; average 38 vs Routing 48 -> 79.17%.
  EXPECT_NE(csv.find("\n1bit-Merging,27000000000,66.67,66.25,38.00,79.17,,,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nRouting,40500000000,100.00,,48.00,100.00,,,\n"), std::string::npos) << csv;
}

TEST(Tables, StorageUnitFollowsTheLargestModel) {
  auto j = synthetic_results("storage");
  EXPECT_EQ(storage_unit(view_of(j)).name, "GB");
  EXPECT_NE(render_storage_table(view_of(j), Format::Markdown).find("| 1bit-Merging | 27.00 | 66.67 |"), std::string::npos);
  for (auto& v : j["variants"]) v["storage_bytes"] = v["storage_bytes"].get<double>() / 1e4;  // a mini family: MB
  auto v = view_of(j);
  EXPECT_EQ(storage_unit(v).name, "MB");
  std::string md = render_storage_table(v, Format::Markdown);
  EXPECT_NE(md.find("Storage (MB)"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1bit-Merging | 2.70 | 66.67 |"), std::string::npos) << md;
  EXPECT_NE(render_storage_table(v, Format::Csv).find("\n1bit-Merging,2700000,66.67,"), std::string::npos);
  for (auto& x : j["variants"]) x["storage_bytes"] = x["storage_bytes"].get<double>() / 1e3;
  EXPECT_EQ(storage_unit(view_of(j)).name, "kB");
}

TEST(Tables, RouterAccuracyTable) {
  json j = synthetic_results();
  for (auto& c : j["cells"])
    if (c["variant"] == "1bit-Merging") c["extra"] = {{"router_accuracy", c["benchmark"] == "math" ? 87.5 : 100.0}};
  auto v = view_of(j);
  std::string md = render_router_table(v, Format::Markdown);
  EXPECT_NE(md.find("| 1bit-Merging | 100.00 | 100.00 | 100.00 | 100.00 | 87.50 | 100.00 | 100.00 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| TIES |"), std::string::npos);
  EXPECT_NE(render_for_experiment(v, Format::Markdown).find("Router accuracy"), std::string::npos);
  EXPECT_EQ(render_router_table(view_of(synthetic_results()), Format::Markdown), "");
}

TEST(Tables, FormatNamesAreChecked) {
  EXPECT_EQ(parse_format("latex"), Format::Latex);
  try {
    parse_format("ltx");
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--format: 'ltx'"), std::string::npos);
  }
}

TEST(Results, OtherSchemaVersionIsAClearError) {
  std::string dir = bm::testutil::temp_dir("report");
  json j = synthetic_results();
  j["schema_version"] = 0;
  bm::write_file_atomic(dir + "/old.json", j.dump());
  try {
    load_results(dir + "/old.json");
    FAIL();
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(dir + "/old.json: results schema version 0 but this bitmerge reads version 1"), std::string::npos) << m;
  }
  bm::write_file_atomic(dir + "/other.json", "{\"a\": 1}");
  EXPECT_THROW(load_results(dir + "/other.json"), bm::Error);
}

TEST(Compare, RegressionsMissingAndTolerance) {
  auto base = view_of(synthetic_results());
  json nj = synthetic_results();
  for (auto& c : nj["cells"])
    if (c["variant"] == "TIES" && c["benchmark"] == "gsm8k") c["score"] = 33.0 - 2.5;
  auto now = view_of(nj);
  auto r = compare_results(now, base, 1.0);
  EXPECT_EQ(r.regressions, 1);  // the cell; TIES's average drops only 0.36
  EXPECT_EQ(r.missing, 0);
  EXPECT_NE(r.table.find("| TIES | GSM8K | 33.00 | 30.50 | -2.50 | — | tolerance | REGRESSION |"), std::string::npos) << r.table;
  EXPECT_EQ(compare_results(now, base, 3.0).regressions, 0);
  EXPECT_EQ(compare_results(base, base, 0.0).regressions, 0);
  // A cell done in the baseline but missing now.
  json mj = synthetic_results();
  mj["cells"][0]["status"] = "missing";
  auto rm = compare_results(view_of(mj), base, 1.0);
  EXPECT_GE(rm.missing, 1);
}

TEST(Plots, Figure3AndBarsAsPngAndSvg) {
  std::string dir = bm::testutil::temp_dir("plots");
  try {
    png_terminal();
  } catch (const bm::Error& e) {
    GTEST_SKIP() << e.what();
  }
  for (std::string table : {"storage", "routing", "main"}) {
    auto imgs = render_plots(view_of(synthetic_results(table)), dir);
    ASSERT_EQ(imgs.size(), table == "storage" ? 4u : 2u) << "storage: absolute and % of Routing";
    std::string png = bm::read_text_file(imgs[0]), svg = bm::read_text_file(imgs[1]);
    EXPECT_EQ(png.substr(1, 3), "PNG") << imgs[0];
    EXPECT_GT(png.size(), 2000u);
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    if (table == "storage") {
      EXPECT_NE(svg.find("1bit-Merging"), std::string::npos) << "labels drawn";
    }
  }
}

TEST(Plots, ErrorBarsKeyLabelsAndTheFigure3PaperTerms) {
  std::string dir = bm::testutil::temp_dir("plots2");
  try {
    png_terminal();
  } catch (const bm::Error& e) {
    GTEST_SKIP() << e.what();
  }
  json j = synthetic_results("storage");
  for (auto& v : j["variants"])
    if (v["name"] == "1bit-Merging") v["paper_performance_percent"] = 94.53;
  for (auto& c : j["cells"]) c["extra"] = {{"metrics", {{"acc_stderr", 0.02}}}};
  for (auto& c : j["cells"]) c["metric"] = "acc";
  auto imgs = render_plots(view_of(j), dir);
  ASSERT_EQ(imgs.size(), 4u);
  std::string gp = bm::read_text_file(dir + "/t2_fig3_performance_vs_storage.png.gp");
  EXPECT_NE(gp.find("with yerrorbars"), std::string::npos) << gp;
  EXPECT_EQ(gp.find("with labels"), std::string::npos) << "names go to the key, never onto the canvas";
  EXPECT_NE(gp.find("title \"TIES\""), std::string::npos) << gp;
  std::string dat = bm::read_text_file(dir + "/t2_fig3_performance_vs_storage.dat");
  // 1bit-Merging: 27 GB, average 38, se = sqrt(7 * 2^2) / 7 = 0.756 points.
  EXPECT_NE(dat.find("# 1bit-Merging\n27 38 0.755929"), std::string::npos) << dat;
  std::string d2 = bm::read_text_file(dir + "/t2_fig3_percent_of_routing.dat");
  EXPECT_NE(d2.find("# paper: 1bit-Merging\n66.25 94.53"), std::string::npos) << d2;
  // Measured: 27/40.5 = 66.67% of storage, 38/48 = 79.17% of performance, +-1 se propagated (no items).
  EXPECT_NE(d2.find("# 1bit-Merging\n66.6667 79.1667 "), std::string::npos) << d2;
  std::string svg = bm::read_text_file(dir + "/t2_fig3_percent_of_routing.svg");
  EXPECT_NE(svg.find("paper: 1bit-Merging 94.53% at 66.25%"), std::string::npos);
  // Bars with error bars for the other experiment kinds.
  render_plots(view_of(synthetic_results("routing")), dir);
  EXPECT_NE(bm::read_text_file(dir + "/t2_fig2_routing_vs_merging.png.gp").find("histogram errorbars"), std::string::npos);
}

// A tiny or broken model can end its output inside a multi-byte character
// (byte-fallback pieces); results must still be written, with U+FFFD there.
TEST(Results, InvalidUtf8FromAModelIsWrittenReplaced) {
  json j = synthetic_results();
  j["cells"][0]["extra"] = {{"sample_output", std::string("def f():\n  return \xE6")}};
  std::string path = bm::testutil::temp_dir("report-utf8") + "/results.json";
  ASSERT_NO_THROW(bm::report::save_results(path, j));
  json back = bm::report::load_results(path);
  EXPECT_EQ(back["cells"][0]["extra"]["sample_output"].get<std::string>(), "def f():\n  return \xEF\xBF\xBD");
}
