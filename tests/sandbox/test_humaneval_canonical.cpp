// The 164 canonical HumanEval solutions pass in the sandbox (program built as
// in PROTOCOLS.md), and the same programs with a wrong body fail.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tasks/sandbox/sandbox.hpp"

namespace {

std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

TEST(SandboxHumanEval, CanonicalSolutionsPassWrongOnesFail) {
  const char* dd = getenv("BITMERGE_DATA_DIR");
  ASSERT_NE(dd, nullptr) << "BITMERGE_DATA_DIR not set";
  std::string text = read_gz(std::string(dd) + "/humaneval/HumanEval.jsonl.gz");
  ASSERT_FALSE(text.empty());
  std::vector<std::string> good, bad, ids;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    std::string tail = "\n" + j["test"].get<std::string>() + "\ncheck(" + j["entry_point"].get<std::string>() + ")";
    good.push_back(j["prompt"].get<std::string>() + j["canonical_solution"].get<std::string>() + tail);
    if (bad.size() < 20) bad.push_back(j["prompt"].get<std::string>() + "    return None\n" + tail);
    ids.push_back(j["task_id"].get<std::string>());
  }
  ASSERT_EQ(good.size(), 164u);
  std::vector<std::string> all = good;
  all.insert(all.end(), bad.begin(), bad.end());
  bm::SandboxOptions opts;
  opts.timeout_s = 10.0;  // generous: the machine may be busy; the bench checks speed
  auto rs = bm::run_python_programs(all, opts);
  ASSERT_EQ(rs.size(), all.size());
  for (size_t i = 0; i < good.size(); ++i)
    EXPECT_EQ(rs[i].status, "passed") << ids[i] << ": " << rs[i].output.substr(0, 400);
  for (size_t i = good.size(); i < all.size(); ++i)
    EXPECT_EQ(rs[i].status, "failed") << ids[i - good.size()] << ": " << rs[i].output.substr(0, 400);
}

}  // namespace
