// `bitmerge table`: harness/runner/verbs.cpp -> harness/report/verbs.cpp (shared with the runner tests).
#include "harness/cli/registry.hpp"
#include "harness/runner/verbs.hpp"

BM_COMMAND(table, [](CLI::App& app) { bm::runner::add_table_verb(app); });
