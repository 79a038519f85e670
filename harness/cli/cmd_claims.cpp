// `bitmerge claims`: defined in harness/report/verbs.cpp (claims are data: [[claims]] in the experiment configs).
#include "harness/cli/registry.hpp"
#include "harness/report/verbs.hpp"

BM_COMMAND(claims, [](CLI::App& app) { bm::report::add_claims_options(app); });
