#include "tasks/common/templates.hpp"

#include <algorithm>

#include "harness/core/error.hpp"

namespace bm {

namespace {
// Python's str.strip() (Jinja's |strip / .strip() in the chat templates): ASCII whitespace.
std::string py_strip(const std::string& s) {
  auto sp = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  size_t a = 0, b = s.size();
  while (a < b && sp(s[a])) ++a;
  while (b > a && sp(s[b - 1])) --b;
  return s.substr(a, b - a);
}
}  // namespace

const std::vector<std::string>& chat_format_names() {
  static const std::vector<std::string> n = {"llama2-chat", "mistral-inst", "alpaca", "mrm8488-coder"};
  return n;
}

bool is_chat_format(const std::string& name) {
  const auto& n = chat_format_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

std::vector<std::string> with_chat_formats(std::vector<std::string> own) {
  for (const auto& x : chat_format_names()) own.push_back(x);
  return own;
}

std::string chat_prompt(const std::string& format, const std::string& user, const std::string& system,
                        const std::string& where) {
  const std::string bos = kChatBosText;
  if (format == "llama2-chat") {
    std::string content = system.empty() ? user : "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user;
    return bos + "[INST] " + py_strip(content) + " [/INST]";
  }
  if (format == "mistral-inst") {
    if (!system.empty()) fail(where, "mistral-inst (Mistral-7B-Instruct-v0.1's chat_template) has no system role");
    return bos + "[INST] " + user + " [/INST]";
  }
  if (format == "alpaca") {
    if (!system.empty()) fail(where, "the alpaca format has no system message");
    return alpaca_prompt(user);
  }
  if (format == "mrm8488-coder") {
    std::string sys = system.empty() ? "You are a coding assistant that will help the user to resolve the following "
                                       "instruction:"
                                     : system;
    return sys + "\n### Instruction: " + user + "\n\n### Solution:\n";
  }
  std::string all;
  for (const auto& x : chat_format_names()) all += std::string(all.empty() ? "" : ", ") + x;
  fail(where, "unknown chat template '" + format + "'" + did_you_mean(format, chat_format_names()) +
                  "; use one of: " + all + " (or none)");
}

std::string alpaca_prompt(const std::string& instruction, const std::string& response_prefix) {
  std::string p =
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
      "### Instruction:\n" +
      instruction + "\n\n### Response:";
  if (!response_prefix.empty()) p += " " + response_prefix;
  return p;
}

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
