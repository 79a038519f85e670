// `bitmerge run`: defined in harness/runner/verbs.cpp (shared with the runner
// tests); here the libtorch "model" backend and checkpoint fetcher are added.
#include "harness/cli/registry.hpp"
#include "harness/runner/model_backend.hpp"
#include "harness/runner/verbs.hpp"

BM_COMMAND(run, [](CLI::App& app) {
  bm::runner::register_model_backend();
  bm::runner::add_run_verb(app);
});
