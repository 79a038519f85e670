// `bitmerge compare`: harness/runner/verbs.cpp -> harness/report/verbs.cpp (shared with the runner tests).
#include "harness/cli/registry.hpp"
#include "harness/runner/verbs.hpp"

BM_COMMAND(compare, [](CLI::App& app) { bm::runner::add_compare_verb(app); });
