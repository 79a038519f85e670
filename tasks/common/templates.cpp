#include "tasks/common/templates.hpp"

namespace bm {

std::string alpaca_prompt(const std::string& instruction, const std::string& response_prefix) {
  std::string p =
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
      "### Instruction:\n" +
      instruction + "\n\n### Response:";
  if (!response_prefix.empty()) p += " " + response_prefix;
  return p;
}

std::string inst_prompt(const std::string& user) { return "[INST] " + user + " [/INST]"; }

std::string extract_code_block(const std::string& text) {
  size_t f = text.find("```");
  if (f == std::string::npos) return text;
  size_t body = text.find('\n', f);
  if (body == std::string::npos) return "";
  ++body;
  size_t end = text.find("```", body);
  return end == std::string::npos ? text.substr(body) : text.substr(body, end - body);
}

}  // namespace bm
