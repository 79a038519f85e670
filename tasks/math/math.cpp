#include "tasks/math/math.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <tuple>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"
#include "tasks/math/math_equiv.hpp"

namespace bm {

static const char* kMathSource = "hendrycks/math MATH.tar test split (MATH/test/<subject>/<n>.json)";

static MathProblem problem_from_json(const nlohmann::ordered_json& j, const std::string& path, int64_t line,
                                     const std::string& uid) {
  RecordRef r{j, path, line};
  MathProblem p;
  p.problem = r.str("problem");
  p.solution = r.str("solution");
  if (j.contains("level")) p.level = j["level"].is_string() ? j["level"].get<std::string>() : "Level " + j["level"].dump();
  if (j.contains("type")) p.type = r.str("type");
  else if (j.contains("subject")) p.type = r.str("subject");
  p.unique_id = !uid.empty() ? uid : j.contains("unique_id") ? r.str("unique_id") : "";
  p.answer = math_gold_answer(p.solution);
  if (p.answer.empty()) r.bad("'solution' has no \\boxed{...} answer");
  return p;
}

std::vector<MathProblem> load_math_jsonl(const std::string& path) {
  std::vector<MathProblem> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    out.push_back(problem_from_json(j, path, line, ""));
    if (out.back().unique_id.empty()) out.back().unique_id = std::to_string(out.size() - 1);
  });
  return out;
}

// "…/test/<subject>/<n>.json" -> (subject, n); false if the name is not of that form.
static bool parse_tree_name(const std::string& name, std::string& subject, long& n) {
  auto parts = split(name, "/");
  if (parts.size() < 3) return false;
  const std::string& file = parts[parts.size() - 1];
  if (parts[parts.size() - 3] != "test" || !ends_with(file, ".json")) return false;
  std::string num = file.substr(0, file.size() - 5);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) return false;
  subject = parts[parts.size() - 2];
  n = std::stol(num);
  return true;
}

struct Keyed {
  std::string subject;
  long n;
  MathProblem p;
};
static std::vector<MathProblem> sorted(std::vector<Keyed> v) {
  std::sort(v.begin(), v.end(), [](const Keyed& a, const Keyed& b) { return std::tie(a.subject, a.n) < std::tie(b.subject, b.n); });
  std::vector<MathProblem> out;
  for (auto& k : v) out.push_back(std::move(k.p));
  return out;
}
static MathProblem parse_problem_file(const std::string& text, const std::string& where, const std::string& uid) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(where, std::string("malformed JSON (") + e.what() + "); re-fetch the data");
  }
  if (!j.is_object()) fail(where, "malformed MATH problem: not a JSON object; re-fetch the data");
  return problem_from_json(j, where, 0, uid);
}

std::vector<MathProblem> load_math_tree(const std::string& root) {
  std::string test = root;
  for (const char* sub : {"/MATH/test", "/test"}) {
    struct stat st {};
    if (stat((root + sub).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      test = root + sub;
      break;
    }
  }
  DIR* d = opendir(test.c_str());
  if (!d) fail(test, std::string("missing MATH test directory (from ") + kMathSource + "); " + kDataFetchHint);
  std::vector<std::string> subjects;
  while (auto* e = readdir(d))
    if (e->d_name[0] != '.') subjects.push_back(e->d_name);
  closedir(d);
  std::vector<Keyed> v;
  for (const auto& s : subjects) {
    DIR* sd = opendir((test + "/" + s).c_str());
    if (!sd) continue;
    while (auto* e = readdir(sd)) {
      std::string name = "test/" + s + "/" + e->d_name, subject;
      long n;
      if (!parse_tree_name(name, subject, n)) continue;
      std::string path = test + "/" + s + "/" + e->d_name;
      v.push_back({subject, n, parse_problem_file(read_text_file(path), path, name)});
    }
    closedir(sd);
  }
  if (v.empty()) fail(test, "no MATH problems (<subject>/<n>.json) found; " + std::string(kDataFetchHint));
  return sorted(std::move(v));
}

std::vector<MathProblem> load_math_tar(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    fail(path, "cannot open MATH archive (" + msg + "); re-fetch it");
  }
  std::vector<Keyed> v;
  struct archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e), subject;
    long n;
    if (archive_entry_filetype(e) != AE_IFREG || !parse_tree_name(name, subject, n)) {
      archive_read_data_skip(a);
      continue;
    }
    std::string text(static_cast<size_t>(archive_entry_size(e)), '\0');
    la_ssize_t got = archive_read_data(a, text.data(), text.size());
    if (got < 0 || static_cast<size_t>(got) != text.size()) {
      archive_read_free(a);
      fail(path + ":" + name, "truncated archive member; re-fetch the archive");
    }
    auto parts = split(name, "/");
    std::string uid = "test/" + subject + "/" + parts.back();
    v.push_back({subject, n, parse_problem_file(text, path + ":" + name, uid)});
  }
  if (rc != ARCHIVE_EOF) {
    std::string msg = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    fail(path, "corrupt MATH archive (" + msg + "); re-fetch it");
  }
  archive_read_free(a);
  if (v.empty()) fail(path, "no MATH problems (test/<subject>/<n>.json) in the archive; re-fetch it");
  return sorted(std::move(v));
}

std::string math_prompt(const std::string& problem) { return "Problem: " + problem + "\nAnswer:"; }

namespace {
class MathTask : public Task {
 public:
  explicit MathTask(bool m500) : m500_(m500) {}
  std::string name() const override { return m500_ ? "math500" : "math"; }
  std::string label() const override { return m500_ ? "MATH-500" : "MATH"; }
  std::string domain() const override { return "math"; }
  int64_t generation_budget(const std::string& template_name) const override {
    return template_name == "mergelm" || is_chat_format(template_name) ? 1024 : 256;
  }
  // MATH-format train problems where the data directory has math/MATH_train.jsonl (the mini family writes it).
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::vector<std::string> out;
    if (file_exists(data_dir + "/math/MATH_train.jsonl"))
      for (const auto& m : load_math_jsonl(data_dir + "/math/MATH_train.jsonl")) out.push_back(math_prompt(m.problem));
    return out;
  }
  std::string version() const override { return m500_ ? "math500-1" : "math-1"; }
  std::vector<std::string> metric_names() const override { return {"exact_match"}; }
  std::string headline_metric() const override { return "exact_match"; }
  std::vector<TaskOption> options() const override {
    if (m500_) return {};
    TaskOption o;
    o.key = "math_subset";  // the full test split (5,000) or MATH-500
    o.values = {"full", "math500"};
    o.default_value = "full";
    o.effect = TaskOption::Effect::Subset;
    o.subset_tasks = {{"full", "math"}, {"math500", "math500"}};
    o.in_every_cell_key = true;
    return {o};
  }
  std::string headline_note() const override {
    return "answer = last \\boxed{}, else after 'The answer is', else last $...$; equivalence = lm-eval "
           "hendrycks_math is_equiv (strip_string)";
  }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval", "mergelm"}); }
  void load(const std::string& data_dir) override {
    if (m500_) {
      path_ = require_data_file(data_dir, "math/math500_test.jsonl", "MATH-500", "openai/prm800k prm800k/math_splits/test.jsonl");
      format_ = "jsonl";
      items_ = load_math_jsonl(path_);
      return;
    }
    std::string base = data_dir + "/math/";
    if (file_exists(base + "MATH_test.jsonl")) {
      path_ = base + "MATH_test.jsonl", format_ = "jsonl";
      items_ = load_math_jsonl(path_);
    } else if (file_exists(base + "MATH_test.tar.gz")) {
      path_ = base + "MATH_test.tar.gz", format_ = "tar.gz";
      items_ = load_math_tar(path_);
    } else {
      path_ = require_data_file(data_dir, "math/MATH/test", "MATH",
                                std::string(kMathSource) + "; also accepted: " + base + "MATH_test.jsonl or " + base +
                                    "MATH_test.tar.gz");
      format_ = "tree";
      items_ = load_math_tree(path_);
    }
  }
  std::vector<std::string> data_files() const override { return {path_}; }
  // MATH_test.jsonl / .tar.gz: the hendrycks test split repacked (derived: docs/data-sources.md).
  std::vector<DataSource> data_sources() const override {
    if (m500_)
      return {
          {"math/math500_test.jsonl",
           "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
           "https://raw.githubusercontent.com/MobileLLM/BudgetThinker/f0466b9d37595f46603387baa5930e312fefb7f5/evaluation/data/math500/test_ori.jsonl"}};
    return {
      {"math/MATH_test.jsonl",
       "9235b7d073aeaab9143f960cc15b896295598edbecfe615a8e9da92bce713c2c",
       ""},
      {"math/MATH_test.tar.gz",
       "b21e76163635a0bc037356d7944531b1ba154577a939a920932c87feb766db7b",
       ""}};
  }
  std::string data_format() const override { return format_; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return items_[i].unique_id; }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<GenerateRequest> reqs;
    for (size_t i : idx) {
      GenerateRequest r;
      const auto& q = items_[i].problem;
      if (ctx.template_name == "mergelm") {
        r.prompt = alpaca_prompt(q, "Let's think step by step.");
        r.until = {"Instruction:", "Instruction", "Response:", "Response"};
      } else if (is_chat_format(ctx.template_name)) {
        r.prompt = chat_prompt(ctx.template_name, q);
        r.until = {"</s>"};
      } else {
        r.prompt = math_prompt(q);
        r.until = {"Problem:"};
      }
      r.max_new_tokens = ctx.max_new_tokens > 0 ? ctx.max_new_tokens : generation_budget(ctx.template_name);
      reqs.push_back(std::move(r));
    }
    auto res = lm.generate(reqs);
    if (res.size() != reqs.size()) fail("LanguageModel::generate", "returned the wrong number of results; engine bug");
    std::vector<Sample> out;
    for (size_t k = 0; k < idx.size(); ++k) {
      const auto& it = items_[idx[k]];
      Sample s;
      s.task = name();
      s.id = it.unique_id;
      s.prompt = reqs[k].prompt;
      s.raw_output = cut_at_stop(res[k].text, reqs[k].until);
      s.extracted = math_extract_answer(s.raw_output);
      s.gold = it.answer;
      s.correct = math_is_equiv(s.extracted, s.gold);
      s.metrics["exact_match"] = s.correct ? 1.0 : 0.0;
      s.extra["type"] = it.type;
      s.extra["level"] = it.level;
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  bool m500_;
  std::string path_, format_;
  std::vector<MathProblem> items_;
};
}  // namespace

std::unique_ptr<Task> make_math_task() { return std::make_unique<MathTask>(false); }
std::unique_ptr<Task> make_math500_task() { return std::make_unique<MathTask>(true); }

}  // namespace bm
