// Prompt templates shared by tasks. "lm-eval" = lm-evaluation-harness zero-shot
// (default); "mergelm" = Alpaca-style prompts of MergeLM/DARE (math adds
// "Let's think step by step."); "llama2-chat" = "[INST] ... [/INST]" as the
// LLaMA-2-chat / Mistral-Instruct experts were tuned with (BOS is the engine's).
#pragma once
#include <string>

namespace bm {

std::string alpaca_prompt(const std::string& instruction, const std::string& response_prefix = "");
std::string inst_prompt(const std::string& user);

// The first fenced code block (```python / ``` ... ```) of a chat-style answer,
// or the text unchanged when it has none (an unterminated fence runs to the end).
std::string extract_code_block(const std::string& text);

}  // namespace bm
