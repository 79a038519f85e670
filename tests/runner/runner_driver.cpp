// Test driver: the runner's verbs without libtorch (backend "synthetic" only).
#include <iostream>

#include "harness/core/error.hpp"
#include "harness/runner/verbs.hpp"

int main(int argc, char** argv) {
  CLI::App app{"bm_runner_driver: the runner verbs for tests"};
  app.require_subcommand(1);
  bm::runner::add_run_verb(app);
  bm::runner::add_table_verb(app);
  bm::runner::add_compare_verb(app);
  bm::runner::add_slurm_verb(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const bm::Error& e) {
    std::cerr << "bitmerge: error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
