// Helpers shared by the checkpoint I/O tests.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "harness/models/model_config.hpp"

namespace bm::iotest {

// A fresh empty directory under the system temp dir, removed at exit (tests/common/tmpdir.hpp).
std::string temp_dir(const std::string& tag);
// A tiny LLaMA config (vocab 64, hidden 16, 2 layers, 4 heads, 2 kv heads).
ModelConfig tiny_config();
// Runs a shell command, returns its exit status; output goes to `log` if non-null.
int run(const std::string& cmd, std::string* log = nullptr);
// BITMERGE_TEST_PYTHON or "" when unset / missing.
std::string test_python();
// Writes `bytes` to `path` (not atomic: tests build broken inputs).
void write_raw(const std::string& path, const std::string& bytes);
std::string read_raw(const std::string& path);

}  // namespace bm::iotest
