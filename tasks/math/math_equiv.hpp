// MATH answer handling, a line-by-line port of lm-eval's hendrycks_math utils
// (last_boxed_only_string, remove_boxed, strip_string, is_equiv), including
// its exception behaviour: where Python raises inside strip_string, is_equiv
// falls back to comparing the raw strings.
#pragma once
#include <optional>
#include <string>

namespace bm {

std::optional<std::string> last_boxed_only_string(const std::string& s);
std::optional<std::string> remove_boxed(const std::string& s);  // nullopt where Python's asserts fail
// Throws MathNormalizeError where the Python raises (assert / IndexError / ValueError).
struct MathNormalizeError {};
std::string math_strip_string(const std::string& s);
bool math_is_equiv(const std::string& a, const std::string& b);

// Prediction: content of the last \boxed{} (or \fbox{}); else the text after the
// last "The answer is"; else the content of the last $...$; else the whole
// (trimmed) output.
std::string math_extract_answer(const std::string& output);
// Gold: remove_boxed(last_boxed_only_string(solution)), as lm-eval's process_docs.
std::string math_gold_answer(const std::string& solution);

}  // namespace bm
