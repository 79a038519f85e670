// tokenizer_config.json of a Hugging Face model directory: what bitmerge reads
// from it (add_bos_token, bos_token, chat_template), and the BOS decision that
// follows lm-evaluation-harness 0.4.x (HFLM add_bos_token=None: the tokenizer's
// own default, i.e. tokenizer_config.json's add_bos_token).
#pragma once
#include <optional>
#include <string>

namespace bm {

struct TokenizerConfig {
  std::string path;                      // <dir>/tokenizer_config.json
  bool present = false;                  // the file exists
  std::optional<bool> add_bos_token;     // absent key = nullopt
  std::string tokenizer_class;           // "" when absent
  std::string bos_token;                 // string or {"content": ...}; "" when absent
  std::optional<std::string> chat_template;
};

// Reads <model_dir>/tokenizer_config.json. A missing file gives present=false;
// a file that is not a JSON object, or whose add_bos_token is not a boolean,
// fails with one line naming the file (and the key) and the fix.
TokenizerConfig read_tokenizer_config(const std::string& model_dir);

// The effective "prepend BOS to text requests" and where it came from.
struct BosChoice {
  bool add_bos = false;
  std::string source;  // e.g. "<dir>/tokenizer_config.json add_bos_token", "experiment eval.add_bos"
};

// `override_value` set: it wins (source = override_source). Otherwise the
// checkpoint's tokenizer_config.json add_bos_token, as lm-eval's HF backend
// does by default; a LlamaTokenizer(Fast) config without the key gets the
// class's default (true); no file or another class without the key: false
// (bitmerge's earlier default and lm-eval's before 0.4.x made it the
// tokenizer's; the mini family has no tokenizer_config.json).
BosChoice resolve_add_bos(const std::optional<bool>& override_value, const std::string& override_source,
                          const std::string& model_dir);

// The CLI's --add-bos / --no-add-bos pair: nullopt when neither is given
// (follow the checkpoint); both fails naming the flags.
std::optional<bool> bos_override(bool add_bos_flag, bool no_add_bos_flag);

}  // namespace bm
