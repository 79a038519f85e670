// Temporary directories for tests: fresh (mkdtemp) under $TMPDIR, else /tmp, and removed when the test
// process that made them exits (a forked child that exits leaves them alone). BITMERGE_KEEP_TEST_TMP=1
// keeps them for debugging. Every test that needs a scratch directory takes it from here.
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/core/fileio.hpp"  // bm::remove_tree (std::filesystem would bind to libtorch's own copy and crash)

namespace bm::testutil {

namespace detail {
struct TempRegistry {
  pid_t owner = ::getpid();
  std::mutex mu;
  std::vector<std::string> dirs;
  ~TempRegistry() {
    if (::getpid() != owner) return;
    const char* keep = std::getenv("BITMERGE_KEEP_TEST_TMP");
    if (keep && std::string(keep) == "1") return;
    for (const auto& d : dirs) try {
        bm::remove_tree(d);
      } catch (...) {
      }
  }
};
inline TempRegistry& registry() {
  static TempRegistry r;
  return r;
}
}  // namespace detail

// "/tmp/bm-<tag>-XXXXXX", created empty; removed at exit.
inline std::string temp_dir(const std::string& tag) {
  const char* t = std::getenv("TMPDIR");
  std::string templ = std::string(t && *t ? t : "/tmp") + "/bm-" + tag + "-XXXXXX";
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed for " + templ + "; is $TMPDIR writable?");
  auto& r = detail::registry();
  std::lock_guard<std::mutex> g(r.mu);
  r.dirs.push_back(templ);
  return templ;
}

}  // namespace bm::testutil
