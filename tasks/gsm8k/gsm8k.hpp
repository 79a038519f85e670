// GSM8K (Cobbe et al.): test split, 1,319 problems, greedy generation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct Gsm8kItem {
  int64_t index = 0;
  std::string question, answer;  // answer ends with "#### <number>"
};

std::vector<Gsm8kItem> load_gsm8k(const std::string& path);

// lm-eval filters: strict = first match of "#### (\-?[0-9\.\,]+)";
// flexible = last match of "(-?[$0-9.,]{2,})|(-?[0-9]+)"; "[invalid]" when none.
std::string gsm8k_extract_strict(const std::string& text);
std::string gsm8k_extract_flexible(const std::string& text);
// lm-eval exact_match normalisation (regexes_to_ignore ",", "\$", "(?s).*#### ",
// "\.$", then ignore_case), applied to both prediction and gold.
std::string gsm8k_normalize(const std::string& s);
// MergeLM: the number after the last "The answer is: " ("" if none), rounded like MergeLM.
std::string gsm8k_extract_answer_is(const std::string& text);

// lm-eval's prompt ("lm-eval" template; the router's and the mini family's too).
std::string gsm8k_prompt(const std::string& question);

std::unique_ptr<Task> make_gsm8k_task();

}  // namespace bm
