// bitmerge: merge fine-tuned LLM experts, compress task vectors to 1 bit,
// route, evaluate, and write the paper's tables. One subcommand per verb.
#include <csignal>
#include <iostream>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/models/cpu_numerics.hpp"

#ifndef BITMERGE_GIT_COMMIT
#define BITMERGE_GIT_COMMIT "unknown"
#endif

namespace bm::cli {
static std::vector<std::pair<std::string, AddCommand>>& registry() {
  static std::vector<std::pair<std::string, AddCommand>> r;
  return r;
}
int register_command(const char* name, AddCommand add) {
  registry().emplace_back(name, std::move(add));
  return 0;
}
const std::vector<std::pair<std::string, AddCommand>>& commands() { return registry(); }
}  // namespace bm::cli

int main(int argc, char** argv) {
  // Before any tensor operation: the same bits on every x86-64 CPU.
  try {
    bm::pin_cpu_numerics();
  } catch (const bm::Error& e) {
    std::cerr << "bitmerge: error: " << e.what() << std::endl;
    return 2;
  }
  CLI::App app{"bitmerge: 1bit-Merging of fine-tuned LLM experts, evaluation and paper tables"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("bitmerge ") + BITMERGE_GIT_COMMIT);
  auto cmds = bm::cli::commands();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [name, add] : cmds) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const bm::Error& e) {
    std::cerr << "bitmerge: error: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bitmerge: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
