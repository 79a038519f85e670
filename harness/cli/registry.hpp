// Each verb lives in its own cmd_<verb>.cpp and registers itself:
//   BM_COMMAND(score, [](CLI::App& app) { auto* sub = app.add_subcommand("score", "...");
//                                         ... sub->callback([=] { ... }); });
// Callbacks throw bm::Error for user errors; main() prints it on one line.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace bm::cli {

using AddCommand = std::function<void(CLI::App&)>;
int register_command(const char* name, AddCommand add);
const std::vector<std::pair<std::string, AddCommand>>& commands();

}  // namespace bm::cli

#define BM_COMMAND(name, ...) \
  static const int bm_command_registered_##name = ::bm::cli::register_command(#name, __VA_ARGS__)
