// Prompt templates shared by tasks. "lm-eval" = lm-evaluation-harness zero-shot
// (default); "mergelm" = Alpaca-style prompts of MergeLM/DARE (math adds
// "Let's think step by step."); the chat formats below wrap a task's
// instruction-style user message as an expert was tuned with (the family
// config's per-expert `template`, used when eval.template_mode = "per-expert").
#pragma once
#include <string>
#include <vector>

namespace bm {

std::string alpaca_prompt(const std::string& instruction, const std::string& response_prefix = "");

// Chat formats (docs/checkpoints.md "Prompt templates"), each equal to what the
// repo's own chat_template (tokenizer.apply_chat_template, one user message,
// add_generation_prompt) or its model card gives:
//   llama2-chat   Llama-2-*-chat-hf chat_template: "<s>[INST] " + strip(msg) + " [/INST]";
//                 with a system message "<s>[INST] <<SYS>>\n" + sys + "\n<</SYS>>\n\n" + ...
//   mistral-inst  Mistral-7B-Instruct-v0.1 chat_template: "<s>[INST] " + msg + " [/INST]"
//   alpaca        Alpaca without input (MAmmoTH's and Nondzu's cards): alpaca_prompt(msg)
//   mrm8488-coder mrm8488/llama-2-coder-7b's card: "You are a coding assistant that will help
//                 the user to resolve the following instruction:\n### Instruction: " + msg +
//                 "\n\n### Solution:\n"
// "<s>" is the template's bos_token text: the engine turns a leading "<s>" into
// the BOS id and adds no second one (lm-eval's has_bos_prefix), so the string is
// the HF template's output verbatim.
const std::vector<std::string>& chat_format_names();
bool is_chat_format(const std::string& name);
// A task's own templates followed by every chat format (Task::templates()).
std::vector<std::string> with_chat_formats(std::vector<std::string> own);
// Throws a one-line error naming `where` and the known formats for an unknown name.
std::string chat_prompt(const std::string& format, const std::string& user, const std::string& system = "",
                        const std::string& where = "template");
// The text a template writes for the BOS token ("<s>" for every format above).
constexpr const char* kChatBosText = "<s>";

// The first fenced code block (```python / ``` ... ```) of a chat-style answer,
// or the text unchanged when it has none (an unterminated fence runs to the end).
std::string extract_code_block(const std::string& text);

}  // namespace bm
