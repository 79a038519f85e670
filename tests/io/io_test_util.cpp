#include "tests/io/io_test_util.hpp"

#include "tests/common/tmpdir.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include "harness/core/fileio.hpp"
#include <fstream>
#include <sstream>

namespace bm::iotest {

std::string temp_dir(const std::string& tag) { return testutil::temp_dir("io-" + tag); }

ModelConfig tiny_config() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = 64;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 128;
  return c;
}

int run(const std::string& cmd, std::string* log) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = ::pclose(p);
  if (log) *log = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string test_python() {
  const char* p = std::getenv("BITMERGE_TEST_PYTHON");
  if (!p || !*p || !file_exists(p)) return "";
  return p;
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace bm::iotest
