#include "harness/models/tokenizer_config.hpp"

#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm {

TokenizerConfig read_tokenizer_config(const std::string& model_dir) {
  TokenizerConfig c;
  c.path = model_dir + "/tokenizer_config.json";
  if (!file_exists(c.path)) return c;
  c.present = true;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(c.path));
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what = what.substr(0, nl);
    fail(c.path, "not valid JSON (" + what + "); re-download the model's tokenizer_config.json or delete it");
  }
  if (!j.is_object())
    fail(c.path, "not a JSON object; re-download the model's tokenizer_config.json or delete it");
  if (j.contains("add_bos_token") && !j["add_bos_token"].is_null()) {
    if (!j["add_bos_token"].is_boolean())
      fail(c.path + ": add_bos_token", "is " + j["add_bos_token"].dump() +
                                           ", not true or false; fix the file or set the BOS choice explicitly "
                                           "(experiment [eval] add_bos, or --add-bos / --no-add-bos)");
    c.add_bos_token = j["add_bos_token"].get<bool>();
  }
  if (j.contains("tokenizer_class") && j["tokenizer_class"].is_string()) c.tokenizer_class = j["tokenizer_class"];
  if (j.contains("bos_token")) {
    const auto& b = j["bos_token"];
    if (b.is_string()) c.bos_token = b.get<std::string>();
    else if (b.is_object() && b.contains("content") && b["content"].is_string()) c.bos_token = b["content"];
  }
  if (j.contains("chat_template") && j["chat_template"].is_string()) c.chat_template = j["chat_template"];
  return c;
}

BosChoice resolve_add_bos(const std::optional<bool>& override_value, const std::string& override_source,
                          const std::string& model_dir) {
  if (override_value) return {*override_value, override_source};
  TokenizerConfig c = read_tokenizer_config(model_dir);
  if (c.add_bos_token) return {*c.add_bos_token, c.path + " add_bos_token"};
  if (c.present && (c.tokenizer_class == "LlamaTokenizer" || c.tokenizer_class == "LlamaTokenizerFast"))
    return {true, c.path + " has no add_bos_token: " + c.tokenizer_class + "'s default (true)"};
  if (c.present) return {false, c.path + " has no add_bos_token: default false"};
  return {false, "no tokenizer_config.json in " + model_dir + ": default false"};
}

std::optional<bool> bos_override(bool add_bos_flag, bool no_add_bos_flag) {
  if (add_bos_flag && no_add_bos_flag) fail("--add-bos / --no-add-bos", "both given; give at most one");
  if (add_bos_flag) return true;
  if (no_add_bos_flag) return false;
  return std::nullopt;
}

}  // namespace bm
