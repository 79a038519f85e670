#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "harness/core/error.hpp"
#include "tests/common/tmpdir.hpp"

namespace bmtest {

// The one-line message of the bm::Error that f throws; "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bm::Error& e) {
    return e.what();
  }
  return "";
}

// A fresh scratch directory, removed when the test process exits (tests/common/tmpdir.hpp).
inline std::string make_tmpdir(const std::string& tag) { return bm::testutil::temp_dir("runner-" + tag); }

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

// A tiny random LLaMA family written by transformers (vocab 32000, hidden 32, 2 layers;
// chat/math/code = base + 0.01 N(0,1) per parameter) into DIR/models, and DIR/fam.toml
// (kTinyLlamaFamily) naming it. Returns the generator's run (rc 0 on success).
// A family TOML naming models/{base,chat,math,code} under its own directory.
inline std::string tiny_family_toml(const std::string& name) {
  return "name = \"" + name + R"("
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
)";
}
inline const std::string kTinyLlamaFamily = tiny_family_toml("tiny-llama");

inline CmdResult make_tiny_llama_family(const std::string& dir, const std::string& python,
                                        const std::string& data_dir) {
  write(dir + "/make_family.py", R"PY(
import sys, shutil, torch
from transformers import LlamaConfig, LlamaForCausalLM
out, tok = sys.argv[1], sys.argv[2]
cfg = LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
torch.manual_seed(0)
base = LlamaForCausalLM(cfg)
for name in ["base", "chat", "math", "code"]:
    m = LlamaForCausalLM(cfg)
    m.load_state_dict(base.state_dict())
    if name != "base":
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01 * torch.randn_like(p))
    m.save_pretrained(f"{out}/{name}", safe_serialization=True)
    shutil.copy(tok, f"{out}/{name}/tokenizer.model")
)PY");
  write(dir + "/fam.toml", kTinyLlamaFamily);
  return run_cmd(python + " " + dir + "/make_family.py " + dir + "/models " + data_dir +
                 "/tokenizers/llama2/tokenizer.model");
}

// A tiny family whose models need not exist (synthetic backend).
inline std::string tiny_family(const std::string& dir) {
  std::string p = dir + "/fam.toml";
  write(p, tiny_family_toml("tiny") + R"([shape]
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
