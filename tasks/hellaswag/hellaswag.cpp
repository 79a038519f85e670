#include "tasks/hellaswag/hellaswag.hpp"

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

static const char* kHellaswagSource =
    "rowanz/hellaswag data/hellaswag_val.jsonl, or the 6-line text extraction hellaswag_val_full.txt";

std::string hellaswag_preprocess(const std::string& text) {
  std::string s = trim(text);
  s = replace_all(s, " [title]", ". ");
  // re.sub("\\[.*?\\]", "", s): non-greedy, '.' does not match '\n'.
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '[') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != ']' && s[j] != '\n') ++j;
      if (j < s.size() && s[j] == ']') {
        i = j + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return replace_all(out, "  ", " ");
}

std::vector<HellaswagItem> load_hellaswag_jsonl(const std::string& path) {
  std::vector<HellaswagItem> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    RecordRef r{j, path, line};
    HellaswagItem it;
    it.index = static_cast<int64_t>(out.size());
    std::string ctx = r.str("ctx_a") + " " + py_capitalize(r.str("ctx_b"));
    it.query = hellaswag_preprocess(r.str("activity_label") + ": " + ctx);
    const auto& e = r.at("endings");
    if (!e.is_array() || e.size() != 4) r.bad("'endings' must be a list of 4 strings");
    for (const auto& x : e) {
      if (!x.is_string()) r.bad("'endings' must be a list of 4 strings");
      it.endings.push_back(hellaswag_preprocess(x.get<std::string>()));
    }
    int64_t label = r.integer("label");
    if (label < 0 || label > 3) r.bad("'label' must be 0-3");
    it.label = static_cast<int>(label);
    out.push_back(std::move(it));
  });
  return out;
}

static std::string capitalize_last_fragment(const std::string& line) {
  // line = "activity_label: ctx_a ctx_b"; guess ctx_b = text after the last ". ".
  size_t colon = line.find(": ");
  size_t start = colon == std::string::npos ? 0 : colon + 2;
  size_t dot = line.rfind(". ");
  size_t frag = (dot == std::string::npos || dot < start) ? std::string::npos : dot + 2;
  if (frag == std::string::npos || frag >= line.size()) return line;
  char c = line[frag];
  if (c < 'a' || c > 'z') return line;
  return line.substr(0, frag) + py_capitalize(line.substr(frag));
}

std::vector<HellaswagItem> load_hellaswag_text(const std::string& path) {
  auto lines = split_lines(read_maybe_gz(path));
  if (lines.size() % 6 != 0)
    fail(path, "malformed HellaSwag text file: " + std::to_string(lines.size()) +
                   " lines is not a multiple of 6 (context, label, 4 endings); re-fetch the file");
  std::vector<HellaswagItem> out;
  for (size_t i = 0; i < lines.size(); i += 6) {
    HellaswagItem it;
    it.index = static_cast<int64_t>(out.size());
    it.query = hellaswag_preprocess(capitalize_last_fragment(lines[i]));
    std::string lab = trim(lines[i + 1]);
    if (lab.size() != 1 || lab[0] < '0' || lab[0] > '3')
      fail(path + ":" + std::to_string(i + 2), "malformed HellaSwag label '" + lab + "' (expected 0-3); re-fetch the file");
    it.label = lab[0] - '0';
    for (int k = 0; k < 4; ++k) it.endings.push_back(hellaswag_preprocess(lines[i + 2 + k]));
    out.push_back(std::move(it));
  }
  return out;
}

namespace {
class HellaswagTask : public Task {
 public:
  std::string name() const override { return "hellaswag"; }
  std::string label() const override { return "HellaSwag"; }
  std::string domain() const override { return "chat"; }
  // A train split where the data directory has one: rowanz hellaswag_train.jsonl[.gz],
  // or the 6-line hellaswag_train_full.txt.gz the mini family writes.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::vector<HellaswagItem> hs;
    for (const char* rel : {"hellaswag/hellaswag_train.jsonl", "hellaswag/hellaswag_train.jsonl.gz"})
      if (hs.empty() && file_exists(data_dir + "/" + rel)) hs = load_hellaswag_jsonl(data_dir + "/" + rel);
    if (hs.empty() && file_exists(data_dir + "/hellaswag/hellaswag_train_full.txt.gz"))
      hs = load_hellaswag_text(data_dir + "/hellaswag/hellaswag_train_full.txt.gz");
    std::vector<std::string> out;
    for (const auto& it : hs) out.push_back(it.query);
    return out;
  }
  std::string version() const override { return "hellaswag-1"; }
  std::vector<std::string> metric_names() const override { return {"acc_norm", "acc"}; }
  std::string headline_metric() const override { return "acc_norm"; }
  std::vector<TaskOption> options() const override {
    TaskOption o;
    o.key = "hellaswag_metric";  // the score of a cell: length-normalised or raw log-likelihood
    o.values = {"acc", "acc_norm"};
    o.default_value = "acc_norm";
    o.effect = TaskOption::Effect::Metric;
    o.in_every_cell_key = true;
    return {o};
  }
  std::string headline_note() const override {
    return format_ == "text6" ? "acc_norm; context from the 6-line text extraction (ctx_b capitalization guessed)"
                              : "acc_norm";
  }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval"}); }
  void load(const std::string& data_dir) override {
    for (const char* rel : {"hellaswag/hellaswag_val.jsonl", "hellaswag/hellaswag_val.jsonl.gz"}) {
      std::string p = data_dir + "/" + rel;
      if (file_exists(p)) {
        path_ = p, format_ = "rowanz-jsonl";
        items_ = load_hellaswag_jsonl(p);
        return;
      }
    }
    path_ = require_data_file(data_dir, "hellaswag/hellaswag_val_full.txt.gz", "HellaSwag",
                              std::string(kHellaswagSource) + "; also accepted: " + data_dir + "/hellaswag/hellaswag_val.jsonl[.gz]");
    format_ = "text6";
    items_ = load_hellaswag_text(path_);
  }
  std::vector<std::string> data_files() const override { return {path_}; }
  // The 6-line text extraction of rowanz hellaswag_val.jsonl (derived: docs/data-sources.md).
  std::vector<DataSource> data_sources() const override {
    return {
      {"hellaswag/hellaswag_val_full.txt.gz",
       "8a5e3d39844938323f7a3d2b1e0c6162faf3f3f35396ccd67324aa2f4cae5a7b",
       ""}};
  }
  std::string data_format() const override { return format_; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return std::to_string(items_[i].index); }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<McItem> items;
    for (size_t i : idx) {
      McItem m;
      m.id = item_id(i);
      m.context = is_chat_format(ctx.template_name) ? chat_prompt(ctx.template_name, items_[i].query) : items_[i].query;
      m.choices = items_[i].endings;
      m.gold = items_[i].label;
      items.push_back(std::move(m));
    }
    auto ll = score_choices(lm, items);
    std::vector<Sample> out;
    for (size_t k = 0; k < items.size(); ++k) out.push_back(mc_sample("hellaswag", items[k], ll[k], true));
    return out;
  }

 private:
  std::string path_, format_;
  std::vector<HellaswagItem> items_;
};
}  // namespace

std::unique_ptr<Task> make_hellaswag_task() { return std::make_unique<HellaswagTask>(); }

}  // namespace bm
