// Every config row that the paper has carries all of its published cells:
// ../shared/paper-tables.md (the transcription of the paper's Tables 1-7) is
// parsed here and compared cell by cell with `paper = {...}` in
// configs/experiments/*.toml. Row mapping (the configs' naming):
//   position tables (1, 5, 6):  "<Expert> (<position>)"  <- expert row, position "/" for none
//   main tables (2, 3, 4):      the method / expert name as printed
//   table7.toml:                "Task Arithmetic" <- original, "Task Arithmetic (1-bit experts)" <- compressed;
//                               its other rows come from the family's main table
//   fig2 / fig3:                the family's main table; Routing has no published cells
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "harness/core/fileio.hpp"

namespace {

const std::vector<std::string> kCols = {"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "mbpp", "humaneval", "average"};

using Cells = std::map<std::string, double>;
// table number -> (row key "a|b" -> cells)
std::map<int, std::map<std::string, Cells>> parse_paper(const std::string& text) {
  std::map<int, std::map<std::string, Cells>> out;
  std::istringstream in(text);
  std::string line;
  int table = 0;
  std::regex head("^## Table ([0-9]+)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, head)) {
      table = std::stoi(m[1]);
      continue;
    }
    if (line.rfind("## ", 0) == 0) table = 0;
    if (!table || line.rfind("|", 0) != 0 || line.rfind("|---", 0) == 0) continue;
    std::vector<std::string> f;
    std::string cell;
    std::istringstream ls(line.substr(1));
    while (std::getline(ls, cell, '|')) {
      size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      f.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
    }
    if (f[0] == "expert" || f[0] == "method" || f[0] == "family") continue;
    size_t keys = f.size() - kCols.size();
    std::string key;
    for (size_t i = 0; i < keys; ++i) key += (i ? "|" : "") + f[i];
    Cells c;
    for (size_t i = 0; i < kCols.size(); ++i) c[kCols[i]] = std::stod(f[keys + i]);
    out[table][key] = c;
  }
  return out;
}

}  // namespace

TEST(PaperCells, EveryConfigRowCarriesAllItsPublishedCells) {
  const char* src = std::getenv("BITMERGE_SOURCE_DIR");
  if (!src) GTEST_SKIP() << "BITMERGE_SOURCE_DIR not set";
  std::string md_path = std::string(src) + "/../shared/paper-tables.md";
  if (!bm::file_exists(md_path)) GTEST_SKIP() << md_path << " not present in this checkout's parent";
  auto paper = parse_paper(bm::read_text_file(md_path));
  ASSERT_EQ(paper.size(), 7u) << "Tables 1-7";
  ASSERT_EQ(paper[2].size(), 10u);
  ASSERT_EQ(paper[1].size(), 12u);
  ASSERT_EQ(paper[7].size(), 6u);
  const std::map<std::string, int> main_of = {{"llama2-7b", 2}, {"mistral-7b", 3}, {"llama2-13b", 4}};
  const std::map<std::string, int> pos_of = {{"llama2-7b", 1}, {"mistral-7b", 5}, {"llama2-13b", 6}};
  const std::map<std::string, std::string> t7_of = {
      {"llama2-7b", "LLaMA-2 7B"}, {"mistral-7b", "Mistral 7B"}, {"llama2-13b", "LLaMA-2 13B"}};
  const std::map<std::string, std::string> pos_name = {
      {"none", "/"}, {"attention", "Attention"}, {"mlp", "MLP"}, {"linear", "Linear"}};
  std::regex pos_row("^(Chat|Math|Code) \\((none|attention|mlp|linear)\\)$");
  int rows = 0, cells = 0, used_tables = 0;
  std::map<int, int> rows_per_table;
  for (auto& f : bm::list_dir(std::string(src) + "/configs/experiments")) {
    if (f.size() < 5 || f.substr(f.size() - 5) != ".toml" || f.rfind("mini-", 0) == 0) continue;
    std::string exp = f.substr(0, f.size() - 5);
    toml::table t = toml::parse_file(std::string(src) + "/configs/experiments/" + f);
    std::string fam = t["family"].value_or(std::string());
    if (fam.rfind("mini", 0) == 0) continue;  // mini-family experiments not named mini-* (ablation-bits): no paper cells
    ASSERT_TRUE(main_of.count(fam)) << f << ": family " << fam;
    auto* vs = t["variants"].as_array();
    ASSERT_NE(vs, nullptr) << f;
    for (auto&& n : *vs) {
      auto& v = *n.as_table();
      std::string name = v["name"].value_or(std::string());
      const Cells* want = nullptr;
      int table = 0;
      std::smatch m;
      auto find = [&](int tb, const std::string& key) {
        auto it = paper[tb].find(key);
        if (it != paper[tb].end()) want = &it->second, table = tb;
      };
      if (std::regex_match(name, m, pos_row)) {
        find(pos_of.at(fam), std::string(m[1]) + "|" + pos_name.at(m[2]));
      } else if (exp == "table7" && name == "Task Arithmetic") {
        find(7, t7_of.at(fam) + "|original");
      } else if (name == "Task Arithmetic (1-bit experts)") {
        find(7, t7_of.at(fam) + "|compressed");
      } else {
        find(main_of.at(fam), name);
      }
      auto* p = v["paper"].as_table();
      if (!want) {
        // Rows the paper does not have (Routing, compressed TIES/DARE, ...) carry no cells.
        if (p) {
          EXPECT_EQ(p->size(), 0u) << f << ": " << name << " has paper cells but no paper row";
        }
        continue;
      }
      ++rows;
      ++rows_per_table[table];
      ASSERT_NE(p, nullptr) << f << ": " << name << " lacks `paper` (Table " << table << ")";
      for (auto& c : kCols) {
        auto got = (*p)[c].value<double>();
        ASSERT_TRUE(got.has_value()) << f << ": " << name << " lacks paper." << c << " (Table " << table << ")";
        EXPECT_NEAR(*got, want->at(c), 1e-9) << f << ": " << name << " paper." << c << " (Table " << table << ")";
        ++cells;
      }
      EXPECT_EQ(p->size(), kCols.size()) << f << ": " << name << " has extra paper keys";
    }
    ++used_tables;
  }
  EXPECT_GE(used_tables, 9);
  // Every row of Tables 1-6 appears in some config; of Table 7 the LLaMA-2 7B pair (table7.toml).
  for (int tb : {1, 2, 3, 4, 5, 6}) EXPECT_GE(rows_per_table[tb], static_cast<int>(paper[tb].size())) << "Table " << tb;
  EXPECT_EQ(rows_per_table[7], 2);
  EXPECT_GE(cells, 8 * 80);
}
