// The runner's CLI verbs (run, table, compare, slurm), defined here so the
// bitmerge CLI (harness/cli/cmd_*.cpp) and the torch-free test driver share them.
#pragma once
#include <CLI/CLI.hpp>

namespace bm::runner {

void add_run_verb(CLI::App& app);
void add_table_verb(CLI::App& app);
void add_compare_verb(CLI::App& app);
void add_slurm_verb(CLI::App& app);

// Verbs that must exit non-zero without an error line (compare, slurm
// collect) throw CLI::RuntimeError(1), which main() turns into that exit code.
}  // namespace bm::runner
