// `bitmerge slurm submit|collect`: defined in harness/runner/verbs.cpp. The
// array tasks run `bitmerge run`, which has the model backend.
#include "harness/cli/registry.hpp"
#include "harness/runner/verbs.hpp"

BM_COMMAND(slurm, [](CLI::App& app) { bm::runner::add_slurm_verb(app); });
