#include "harness/report/results.hpp"

#include <algorithm>
#include <cmath>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm::report {

void check_results(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("schema", "") != kResultsSchemaName)
    bm::fail(where, "not a bitmerge results file (no \"schema\": \"" + std::string(kResultsSchemaName) +
                        "\"); pass the results.json written by `bitmerge run`");
  if (!j.contains("schema_version") || !j["schema_version"].is_number_integer())
    bm::fail(where, "key 'schema_version' missing; regenerate it with `bitmerge run` (cells are cached)");
  int v = j["schema_version"].get<int>();
  if (v != kResultsSchemaVersion)
    bm::fail(where, "results schema version " + std::to_string(v) + " but this bitmerge reads version " +
                        std::to_string(kResultsSchemaVersion) +
                        "; rerun `bitmerge run` on its config to rewrite it (finished cells are reused), or use a "
                        "bitmerge build of that version");
  for (const char* k : {"experiment", "variants", "cells"})
    if (!j.contains(k)) bm::fail(where, std::string("key '") + k + "' missing; the file is truncated or hand-edited");
}

nlohmann::json load_results(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bm::read_text_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    bm::fail(path, std::string("not valid JSON (") + e.what() + "); regenerate it with `bitmerge run`");
  }
  check_results(j, path);
  return j;
}

void save_results(const std::string& path, const nlohmann::json& j) {
  check_results(j, path);
  bm::write_file_atomic(path, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

std::optional<double> Row::measured_average(const std::vector<std::string>& b) const {
  if (b.empty()) return std::nullopt;
  double s = 0;
  for (auto& x : b) {
    auto it = measured.find(x);
    if (it == measured.end()) return std::nullopt;
    s += it->second;
  }
  return s / static_cast<double>(b.size());
}

std::optional<double> Row::paper_average(const std::vector<std::string>& b) const {
  if (auto it = paper.find("average"); it != paper.end()) return it->second;
  if (b.empty()) return std::nullopt;
  double s = 0;
  for (auto& x : b) {
    auto it = paper.find(x);
    if (it == paper.end()) return std::nullopt;
    s += it->second;
  }
  return s / static_cast<double>(b.size());
}

std::optional<double> Row::measured_stderr(const std::string& b, const std::vector<std::string>& bs) const {
  if (b != "average") {
    auto it = detail.find(b);
    if (it == detail.end()) return std::nullopt;
    return it->second.stderr_points;
  }
  if (bs.empty()) return std::nullopt;
  double s = 0;
  for (auto& x : bs) {
    auto e = measured_stderr(x, bs);
    if (!e) return std::nullopt;
    s += *e * *e;
  }
  return std::sqrt(s) / static_cast<double>(bs.size());
}

const Row* ResultsView::row(const std::string& n) const {
  for (auto& r : rows)
    if (r.name == n) return &r;
  return nullptr;
}

ResultsView view_of(const nlohmann::json& j) {
  ResultsView v;
  const auto& e = j.at("experiment");
  v.name = e.value("name", "");
  v.title = e.value("title", v.name);
  v.table = e.value("table", "main");
  v.family = e.value("family", "");
  v.best_within = e.value("best_within", "");
  v.backend = e.value("backend", "");
  v.benchmarks = e.at("benchmarks").get<std::vector<std::string>>();
  for (auto& vj : j.at("variants")) {
    Row r;
    r.name = vj.at("name").get<std::string>();
    r.group = vj.value("group", "");
    r.kind = vj.value("kind", "");
    r.expert = vj.value("expert", "");
    r.position = vj.value("position", "");
    if (vj.contains("paper")) r.paper = vj["paper"].get<std::map<std::string, double>>();
    if (vj.contains("storage_bytes")) r.storage_bytes = vj["storage_bytes"].get<double>();
    if (vj.contains("paper_storage_percent")) r.paper_storage_percent = vj["paper_storage_percent"].get<double>();
    if (vj.contains("paper_performance_percent"))
      r.paper_performance_percent = vj["paper_performance_percent"].get<double>();
    v.rows.push_back(std::move(r));
  }
  if (j.contains("provenance") && j["provenance"].is_object() && j["provenance"].contains("model_sha256"))
    v.model_sha256 = j["provenance"]["model_sha256"];
  for (auto& c : j.at("cells")) {
    if (c.value("status", "") != "done") continue;
    std::string name = c.at("variant").get<std::string>();
    for (auto& r : v.rows)
      if (r.name == name) {
        const std::string b = c.at("benchmark").get<std::string>();
        r.measured[b] = c.at("score").get<double>();
        CellDetail d;
        d.metric = c.value("metric", "");
        d.n = c.value("n_items", int64_t{0});
        if (c.contains("stderr") && c["stderr"].is_number()) d.stderr_points = c["stderr"].get<double>();
        if (c.contains("extra") && c["extra"].is_object()) {
          const auto& x = c["extra"];
          const std::string se = d.metric + "_stderr";
          if (!d.stderr_points && x.contains("metrics") && x["metrics"].contains(se) && x["metrics"][se].is_number())
            d.stderr_points = 100.0 * x["metrics"][se].get<double>();
          if (x.contains("items") && x["items"].contains("ids") && x["items"].contains("scores") &&
              x["items"]["scores"].contains(d.metric)) {
            d.ids = x["items"]["ids"].get<std::vector<std::string>>();
            d.items = x["items"]["scores"][d.metric].get<std::vector<double>>();
            if (d.items.size() != d.ids.size())
              bm::fail("results cell " + name + " x " + b, "items.ids and items.scores." + d.metric +
                                                              " differ in length; regenerate it with `bitmerge run`");
          }
        }
        r.detail[b] = std::move(d);
        if (c.contains("extra") && c["extra"].contains("router_accuracy"))
          r.router_accuracy[c.at("benchmark").get<std::string>()] = c["extra"]["router_accuracy"].get<double>();
      }
  }
  return v;
}

StorageUnit storage_unit(const ResultsView& v) {
  double mx = 0;
  for (auto& r : v.rows)
    if (r.storage_bytes) mx = std::max(mx, double(*r.storage_bytes));
  if (mx >= 1e9 || mx == 0) return {"GB", 1e9};
  if (mx >= 1e6) return {"MB", 1e6};
  return {"kB", 1e3};
}

}  // namespace bm::report
