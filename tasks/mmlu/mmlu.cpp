#include "tasks/mmlu/mmlu.hpp"

#include <dirent.h>

#include <algorithm>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

static const char* kMmluSource = "hendrycks/test data.tar or HF cais/mmlu, 57 per-subject CSVs";

std::vector<MmluQuestion> load_mmlu_csv(const std::string& path, const std::string& subject) {
  auto rows = parse_csv(read_text_file(path), path);
  std::vector<MmluQuestion> out;
  bool header = !rows.empty() && rows[0].fields.size() == 6 && rows[0].fields[0] == "question" &&
                rows[0].fields[5] == "answer";
  for (size_t r = header ? 1 : 0; r < rows.size(); ++r) {
    const auto& f = rows[r].fields;
    std::string where = path + ":" + std::to_string(rows[r].line);
    if (f.size() != 6) fail(where, "malformed MMLU row: expected 6 fields (question, 4 choices, answer), got " +
                                       std::to_string(f.size()) + "; re-fetch the file");
    MmluQuestion q;
    q.subject = subject;
    q.row = static_cast<int64_t>(out.size());
    q.question = f[0];
    q.choices.assign(f.begin() + 1, f.begin() + 5);
    std::string a = trim(f[5]);
    if (a.size() == 1 && a[0] >= 'A' && a[0] <= 'D')
      q.answer = a[0] - 'A';
    else if (a.size() == 1 && a[0] >= '0' && a[0] <= '3')
      q.answer = a[0] - '0';
    else
      fail(where, "malformed MMLU answer '" + a + "' (expected A-D or 0-3); re-fetch the file");
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<MmluQuestion> load_mmlu_dir(const std::string& dir, const std::string& suffix) {
  DIR* d = opendir(dir.c_str());
  if (!d) fail(dir, std::string("missing MMLU data directory (from ") + kMmluSource + "); " + kDataFetchHint);
  std::vector<std::string> files;
  while (auto* e = readdir(d)) {
    std::string n = e->d_name;
    if (ends_with(n, suffix) && n.size() > suffix.size()) files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  if (files.empty()) fail(dir, "no MMLU *" + suffix + " files; " + kDataFetchHint);
  std::vector<MmluQuestion> all;
  for (const auto& f : files) {
    auto qs = load_mmlu_csv(dir + "/" + f, f.substr(0, f.size() - suffix.size()));
    all.insert(all.end(), qs.begin(), qs.end());
  }
  return all;
}

std::string mmlu_context(const MmluQuestion& q) {
  std::string s = "The following are multiple choice questions (with answers) about " + replace_all(q.subject, "_", " ") +
                  ".\n\n" + trim(q.question);
  const char* L = "ABCD";
  for (int i = 0; i < 4; ++i) s += std::string("\n") + L[i] + ". " + q.choices[i];
  return s + "\nAnswer:";
}

namespace {
class MmluTask : public Task {
 public:
  std::string name() const override { return "mmlu"; }
  std::string label() const override { return "MMLU"; }
  std::string domain() const override { return "chat"; }
  // The router's chat anchor: the dev split (5 per subject), required.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::string dir = data_dir + "/mmlu/dev";
    auto questions = load_mmlu_dir(dir, "_dev.csv");
    if (questions.empty()) fail(dir, "no *_dev.csv files for the router's chat domain; fetch the MMLU data");
    std::vector<std::string> out;
    for (const auto& q : questions) out.push_back(mmlu_context(q));
    return out;
  }
  std::string version() const override { return "mmlu-1"; }
  std::vector<std::string> metric_names() const override { return {"acc"}; }
  std::string headline_metric() const override { return "acc"; }
  std::string headline_note() const override { return "acc averaged over every question evaluated (weighted by subject size; the full test set has 14,042)"; }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval"}); }
  void load(const std::string& data_dir) override {
    dir_ = require_data_file(data_dir, "mmlu/test", "MMLU", kMmluSource);
    qs_ = load_mmlu_dir(dir_);
    files_.clear();
    std::vector<std::string> seen;
    for (const auto& q : qs_)
      if (seen.empty() || seen.back() != q.subject) seen.push_back(q.subject);
    for (const auto& s : seen) files_.push_back(dir_ + "/" + s + "_test.csv");
  }
  std::vector<std::string> data_files() const override { return files_; }
  std::string data_format() const override { return "per-subject CSV"; }
  size_t size() const override { return qs_.size(); }
  std::string item_id(size_t i) const override { return qs_[i].subject + "/" + std::to_string(qs_[i].row); }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<McItem> items;
    for (size_t i : idx) {
      McItem m;
      m.id = item_id(i);
      m.context = mmlu_context(qs_[i]);
      if (is_chat_format(ctx.template_name)) m.context = chat_prompt(ctx.template_name, m.context);
      m.choices = {"A", "B", "C", "D"};
      m.gold = qs_[i].answer;
      items.push_back(std::move(m));
    }
    auto ll = score_choices(lm, items);
    std::vector<Sample> out;
    for (size_t k = 0; k < items.size(); ++k) {
      out.push_back(mc_sample("mmlu", items[k], ll[k], false));
      out.back().extra["subject"] = qs_[idx[k]].subject;
    }
    return out;
  }

 private:
  std::string dir_;
  std::vector<MmluQuestion> qs_;
  std::vector<std::string> files_;
};
}  // namespace

std::unique_ptr<Task> make_mmlu_task() { return std::make_unique<MmluTask>(); }

}  // namespace bm
