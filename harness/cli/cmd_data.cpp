// bitmerge data fetch | list: benchmark files from their public homes (or a
// mirror), sha256-verified (table: each Task's data_sources(), assembled in
// harness/fetch/data_sources.cpp; sources and licenses: docs/data-sources.md).
#include <cstdio>
#include <cstdlib>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/fetch/fetch.hpp"

namespace {
std::vector<std::string> split_commas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (auto& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(',', start);
      if (end == std::string::npos) end = s.size();
      std::string t = s.substr(start, end - start);
      if (!t.empty()) out.push_back(t);
      start = end + 1;
    }
  }
  return out;
}
}  // namespace

BM_COMMAND(data, [](CLI::App& app) {
  auto* data = app.add_subcommand("data", "Benchmark data files: fetch (sha256-verified) or list");
  data->require_subcommand(1);

  struct FetchOpts {
    std::vector<std::string> tasks{"all"};
    std::string mirror, dest;
    int retries = 4;
  };
  auto o = std::make_shared<FetchOpts>();
  auto* fetch = data->add_subcommand("fetch", "Download benchmark files from their public homes (or --mirror), verified");
  std::string groups;
  for (auto& g : bm::data_task_names()) groups += (groups.empty() ? "" : ",") + g;
  fetch->add_option("--tasks", o->tasks, "Comma-separated: " + groups + " or all")
      ->delimiter(',')
      ->capture_default_str();
  fetch->add_option("--mirror", o->mirror,
                    "Base URL of a copy of the data directory (same relative paths); needed for derived files");
  fetch->add_option("--dest", o->dest, "Data directory (default: $BITMERGE_DATA_DIR)");
  fetch->add_option("--retries", o->retries, "Resumed attempts per file after a broken transfer")->capture_default_str();
  fetch->callback([o] {
    std::string dest = o->dest;
    if (dest.empty()) {
      const char* d = getenv("BITMERGE_DATA_DIR");
      if (!d || !*d) bm::fail("--dest", "no data directory; pass --dest DIR or set BITMERGE_DATA_DIR");
      dest = d;
    }
    bm::DataFetchOptions fo;
    fo.mirror = o->mirror;
    fo.dest = dest;
    fo.download.retries = o->retries;
    auto rs = bm::fetch_data(split_commas(o->tasks), fo);
    int64_t bytes = 0;
    int present = 0;
    for (auto& r : rs) {
      bytes += r.bytes;
      present += r.already_present;
    }
    bm::log_info("data fetch: " + std::to_string(rs.size()) + " files verified in " + dest + " (" +
                 std::to_string(rs.size() - present) + " downloaded, " + std::to_string(present) +
                 " already present, " + std::to_string(bytes >> 10) + " KiB)");
  });

  auto* list = data->add_subcommand("list", "Print the data table: task, path, sha256, source URL");
  list->callback([] {
    for (auto& f : bm::data_files())
      printf("%-11s %-52s %s %s\n", f.task.c_str(), f.path.c_str(), f.sha256.c_str(),
             f.url.empty() ? "(derived: --mirror only)" : f.url.c_str());
  });
});
