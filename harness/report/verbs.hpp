// CLI verbs of the report layer, shared by the bitmerge CLI and the
// torch-free runner test driver:
//   table   RESULTS [--format md|latex|csv] [--out F] [--storage] [--plots DIR] [--seed S] [--resamples N] [--alpha P]
//   compare NEW BASELINE [--mode auto|exact|noise|tolerance] [--tolerance X] [--sigmas K] [--alpha P] [--markdown F]
//   compare FILE:VARIANT FILE:VARIANT [--test auto|mcnemar|bootstrap] [--seed S] [--resamples N] [--format md|csv]
//   claims  RESULTS... [--config TOML] [--out F] [--seed S] [--resamples N]
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace bm::report {

void add_table_options(CLI::App& app);
void add_compare_options(CLI::App& app);
void add_claims_options(CLI::App& app);

// The experiment config holding a results file's claims: `flag` if given, else
// the config recorded in provenance.config.file, else configs/experiments/<name>.toml,
// looked up from the results file's folder and the current directory upwards.
std::string claims_config_for(const std::string& results_path, const std::string& flag);

}  // namespace bm::report
