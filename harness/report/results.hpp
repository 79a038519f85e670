// results.json: the one file every table, plot and comparison reads.
// Layout (schema_version 1), documented in results/README.md:
//   schema, schema_version, experiment{name,title,table,family,benchmarks,best_within,backend},
//   variants[{name,group,kind,expert?,position?,method?,compress?,paper?{bench|average: score},
//             paper_storage_percent?, paper_performance_percent?, storage_bytes?}],
//   cells[{variant,benchmark,key,status: done|missing,score?,metric?,n_items?,extra?}],
//     extra (model backend) = the task result: metrics{<m>, <m>_stderr, n}, headline{metric,value,stderr,n,note},
//     items{ids[], scores{<m>: []}} (per-item scores, docs/statistics.md), version, template, data_files, ...
//   provenance{git_commit, libraries, host, seeds, data_sha256, config, model_sha256?, ...}
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace bm::report {

inline constexpr const char* kResultsSchemaName = "bitmerge-results";
inline constexpr int kResultsSchemaVersion = 1;

// Reads and checks schema name and version; a file from another schema
// version is an error that names the file and both versions.
nlohmann::json load_results(const std::string& path);
void check_results(const nlohmann::json& j, const std::string& where);
void save_results(const std::string& path, const nlohmann::json& j);  // atomic

// What a done cell carries beyond its score (model backend): standard error
// (points), n, and per-item scores (0..1) of the cell's metric with their ids.
struct CellDetail {
  std::string metric;
  int64_t n = 0;
  std::optional<double> stderr_points;
  std::vector<std::string> ids;
  std::vector<double> items;
  bool has_items() const { return !items.empty() && items.size() == ids.size(); }
};

// A flattened view used by tables, plots and compare.
struct Row {
  std::string name, group, kind;
  std::string expert, position;  // variants' expert / position[:scheme] ("" when absent)
  std::map<std::string, double> measured;  // benchmark -> score (done cells only)
  std::map<std::string, CellDetail> detail;  // benchmark -> stderr, n, items (done cells only)
  std::map<std::string, double> paper;     // benchmark or "average" -> score
  std::map<std::string, double> router_accuracy;  // benchmark -> % of items routed to its domain's expert
  std::optional<double> storage_bytes, paper_storage_percent, paper_performance_percent;
  std::optional<double> measured_average(const std::vector<std::string>& benchmarks) const;  // only when complete
  std::optional<double> paper_average(const std::vector<std::string>& benchmarks) const;     // given or computed
  // Standard error in points of a benchmark ("average": sqrt(sum se^2)/K over complete rows).
  std::optional<double> measured_stderr(const std::string& benchmark, const std::vector<std::string>& benchmarks) const;
};

struct ResultsView {
  std::string name, title, table, family, best_within, backend;
  std::vector<std::string> benchmarks;
  std::vector<Row> rows;
  nlohmann::json model_sha256;  // provenance.model_sha256 (model name -> sha256 of the weights), null if absent
  const Row* row(const std::string& name) const;
};

ResultsView view_of(const nlohmann::json& j);

// The unit the storage column and plot use for a view: GB when the largest
// stored size is >= 1 GB, else MB (>= 1 MB) or kB, so a mini family's
// megabyte-sized models do not print as 0.00 GB.
struct StorageUnit {
  std::string name;  // "GB", "MB", "kB"
  double bytes = 1e9;
};
StorageUnit storage_unit(const ResultsView& v);

}  // namespace bm::report
