// `bitmerge slurm`: defined in harness/runner/verbs.cpp (shared with the runner tests).
#include "harness/cli/registry.hpp"
#include "harness/runner/verbs.hpp"

BM_COMMAND(slurm, [](CLI::App& app) { bm::runner::add_slurm_verb(app); });
