// HellaSwag (Zellers et al.): validation split, 10,042 items.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tasks/common/task.hpp"

namespace bm {

struct HellaswagItem {
  int64_t index = 0;
  std::string query;                 // preprocessed context
  std::vector<std::string> endings;  // 4, preprocessed
  int label = 0;
};

// lm-eval's utils.preprocess: strip, " [title]" -> ". ", drop "[...]", "  " -> " " (once).
std::string hellaswag_preprocess(const std::string& text);

// rowanz JSONL (ctx_a, ctx_b, endings, label, activity_label), plain or .gz:
// query = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b)).
std::vector<HellaswagItem> load_hellaswag_jsonl(const std::string& path);

// The 6-lines-per-item text format ("label: ctx", gold, 4 endings), plain or
// .gz. It has lost the ctx_a / ctx_b split, so lm-eval's capitalize(ctx_b) is
// approximated: when the text after the last ". " of ctx starts with a lower-case
// letter it is taken to be ctx_b and capitalized; then preprocess() as above.
std::vector<HellaswagItem> load_hellaswag_text(const std::string& path);

std::unique_ptr<Task> make_hellaswag_task();

}  // namespace bm
