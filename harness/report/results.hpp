// results.json: the one file every table, plot and comparison reads.
// Layout (schema_version 1), documented in results/README.md:
//   schema, schema_version, experiment{name,title,table,family,benchmarks,best_within,backend},
//   variants[{name,group,kind,expert?,position?,method?,compress?,paper?{bench|average: score},
//             paper_storage_percent?, storage_bytes?}],
//   cells[{variant,benchmark,key,status: done|missing,score?,metric?,n_items?,extra?}],
//   provenance{git_commit, libraries, host, seeds, data_sha256, config, ...}
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

// A flattened view used by tables, plots and compare.
struct Row {
  std::string name, group, kind;
  std::map<std::string, double> measured;  // benchmark -> score (done cells only)
  std::map<std::string, double> paper;     // benchmark or "average" -> score
  std::map<std::string, double> router_accuracy;  // benchmark -> % of items routed to its domain's expert
  std::optional<double> storage_bytes, paper_storage_percent;
  std::optional<double> measured_average(const std::vector<std::string>& benchmarks) const;  // only when complete
  std::optional<double> paper_average(const std::vector<std::string>& benchmarks) const;     // given or computed
};

struct ResultsView {
  std::string name, title, table, family, best_within, backend;
  std::vector<std::string> benchmarks;
  std::vector<Row> rows;
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
