#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace bmtest {

inline std::string make_tmpdir(const std::string& tag) {
  std::string t = "/tmp/bm-runner-" + tag + "-XXXXXX";
  char* d = ::mkdtemp(&t[0]);
  if (!d) std::abort();
  return t;
}

inline void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

struct CmdResult {
  int rc = -1;
  std::string out;
};

inline CmdResult run_cmd(const std::string& cmd) {
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string source_dir() {
  const char* s = std::getenv("BITMERGE_SOURCE_DIR");
  return s ? s : BITMERGE_SOURCE_DIR;
}

// A tiny family whose models need not exist (synthetic backend).
inline std::string tiny_family(const std::string& dir) {
  std::string p = dir + "/fam.toml";
  write(p, R"(name = "tiny"
architecture = "llama"
dtype = "float32"
[base]
path = "models/base"
[experts.chat]
path = "models/chat"
[experts.math]
path = "models/math"
[experts.code]
path = "models/code"
[shape]
vocab_size = 100
hidden_size = 16
intermediate_size = 32
num_hidden_layers = 2
num_attention_heads = 2
num_key_value_heads = 2
)");
  return p;
}

// An experiment on the tiny family with the synthetic backend.
inline std::string tiny_experiment(const std::string& dir, double delay, int n_bench = 2,
                                   const std::string& extra = "") {
  tiny_family(dir);
  std::string b = n_bench == 2 ? R"(["mmlu", "gsm8k"])" : R"(["mmlu", "hellaswag", "gsm8k", "mbpp"])";
  std::string p = dir + "/exp.toml";
  write(p, "name = \"tiny\"\nfamily = \"fam.toml\"\nbackend = \"synthetic\"\nsynthetic_delay_s = " +
               std::to_string(delay) + "\nresults_dir = \"" + dir + "/results\"\nbenchmarks = " + b + "\n" + extra +
               R"(
[[variants]]
name = "Chat"
group = "Finetuned"
kind = "expert"
expert = "chat"
paper = { average = 25.5 }
[[variants]]
name = "1bit-Math"
group = "Compressed experts"
kind = "compressed"
expert = "math"
position = "attention"
[[variants]]
name = "TIES"
group = "Merging methods"
kind = "merge"
method = "ties"
params = { density = 0.2 }
[[variants]]
name = "1bit-Merging"
group = "Merging methods"
kind = "onebit_merging"
compress = { chat = "mlp", math = "attention", code = "attention" }
)");
  return p;
}

}  // namespace bmtest
