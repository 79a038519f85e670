#include "tasks/gsm8k/gsm8k.hpp"

#include <cmath>
#include <regex>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

std::vector<Gsm8kItem> load_gsm8k(const std::string& path) {
  std::vector<Gsm8kItem> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    RecordRef r{j, path, line};
    Gsm8kItem it;
    it.index = static_cast<int64_t>(out.size());
    it.question = r.str("question");
    it.answer = r.str("answer");
    if (it.answer.find("#### ") == std::string::npos) r.bad("'answer' has no '#### <final answer>'");
    out.push_back(std::move(it));
  });
  return out;
}

std::string gsm8k_extract_strict(const std::string& text) {
  static const std::regex re("#### (\\-?[0-9\\.\\,]+)");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return "[invalid]";
  return trim(m[1].str());
}

std::string gsm8k_extract_flexible(const std::string& text) {
  static const std::regex re("(-?[$0-9.,]{2,})|(-?[0-9]+)");
  std::string last;
  bool any = false;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    any = true;
    last = (*it)[1].matched && (*it)[1].length() > 0 ? (*it)[1].str() : (*it)[2].str();
    if (last.empty()) last = "[invalid]";
  }
  return any ? trim(last) : "[invalid]";
}

std::string gsm8k_normalize(const std::string& s0) {
  std::string s = replace_all(replace_all(s0, ",", ""), "$", "");
  size_t h = s.rfind("#### ");
  if (h != std::string::npos) s = s.substr(h + 5);
  // "\.$": a final '.', or one just before a final '\n' (Python '$').
  if (ends_with(s, ".")) s.pop_back();
  else if (ends_with(s, ".\n")) s.erase(s.size() - 2, 1);
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

std::string gsm8k_extract_answer_is(const std::string& text) {
  auto parts = split(text, "The answer is: ");
  if (parts.size() < 2) return "";
  static const std::regex re("[\\-+]?[0-9]*[\\.,/]?[0-9]+");
  std::smatch m;
  std::string tail = trim(parts.back());
  if (!std::regex_search(tail, m, re)) return "";
  std::string g = m.str();
  double v;
  if (g.find('/') != std::string::npos) {
    auto ab = split(g, "/");
    double den = std::atof(ab[1].c_str());
    if (den == 0) return "";
    v = std::atof(ab[0].c_str()) / den;
  } else {
    v = std::atof(replace_all(g, ",", "").c_str());
  }
  std::ostringstream os;
  os << static_cast<long long>(std::llround(v));
  return os.str();
}

std::string gsm8k_prompt(const std::string& question) { return "Question: " + question + "\nAnswer:"; }

namespace {
class Gsm8kTask : public Task {
 public:
  std::string name() const override { return "gsm8k"; }
  std::string label() const override { return "GSM8K"; }
  std::string domain() const override { return "math"; }
  int64_t generation_budget(const std::string& template_name) const override {
    return template_name == "mergelm" || is_chat_format(template_name) ? 512 : 256;
  }
  // The router's math anchor: the train split, required.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::string p = data_dir + "/gsm8k/train.jsonl";
    if (!file_exists(p)) fail(p, "missing: the router's math domain trains on GSM8K train; fetch the data");
    std::vector<std::string> out;
    for_each_jsonl(p, [&](const nlohmann::ordered_json& j, int64_t) { out.push_back(gsm8k_prompt(j.at("question").get<std::string>())); });
    return out;
  }
  std::string version() const override { return "gsm8k-1"; }
  std::vector<std::string> metric_names() const override {
    return {"exact_match,flexible-extract", "exact_match,strict-match", "exact_match,answer-is"};
  }
  std::string headline_metric() const override { return "exact_match,flexible-extract"; }
  std::vector<TaskOption> options() const override {
    TaskOption o;
    o.key = "gsm8k_prompt";  // lm-eval's "Question: ... Answer:" or MergeLM's Alpaca prompt
    o.values = {"lm-eval", "mergelm"};
    o.default_value = "lm-eval";
    o.effect = TaskOption::Effect::Template;
    o.in_every_cell_key = true;
    return {o};
  }
  std::string headline_note() const override {
    return "exact match of the last number (lm-eval flexible-extract); strict-match (#### N) and MergeLM's "
           "'The answer is: N' reported too";
  }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval", "mergelm"}); }
  void load(const std::string& data_dir) override {
    path_ = require_data_file(data_dir, "gsm8k/test.jsonl", "GSM8K", "openai/grade-school-math grade_school_math/data/test.jsonl");
    items_ = load_gsm8k(path_);
  }
  std::vector<std::string> data_files() const override { return {path_}; }
  std::vector<DataSource> data_sources() const override {
    return {
      {"gsm8k/test.jsonl",
       "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
       "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl"},
      {"gsm8k/train.jsonl",
       "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
       "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/train.jsonl"}};
  }
  std::string data_format() const override { return "jsonl"; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return std::to_string(items_[i].index); }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<GenerateRequest> reqs;
    for (size_t i : idx) {
      GenerateRequest r;
      const auto& q = items_[i].question;
      if (ctx.template_name == "mergelm") {
        r.prompt = alpaca_prompt(q, "Let's think step by step.");
        r.until = {"Instruction:", "Instruction", "Response:", "Response"};
      } else if (is_chat_format(ctx.template_name)) {
        r.prompt = chat_prompt(ctx.template_name, q);
        r.until = {"</s>"};
      } else {
        r.prompt = gsm8k_prompt(q);
        r.until = {"Question:", "</s>", "<|im_end|>"};
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
      s.task = "gsm8k";
      s.id = item_id(idx[k]);
      s.prompt = reqs[k].prompt;
      s.raw_output = cut_at_stop(res[k].text, reqs[k].until);
      std::string gold = gsm8k_normalize(it.answer);
      std::string strict = gsm8k_extract_strict(s.raw_output), flex = gsm8k_extract_flexible(s.raw_output);
      std::string ans_is = gsm8k_extract_answer_is(s.raw_output);
      s.metrics["exact_match,strict-match"] = gsm8k_normalize(strict) == gold ? 1.0 : 0.0;
      s.metrics["exact_match,flexible-extract"] = gsm8k_normalize(flex) == gold ? 1.0 : 0.0;
      s.metrics["exact_match,answer-is"] = !ans_is.empty() && ans_is == gold ? 1.0 : 0.0;
      s.extracted = flex;
      s.gold = gold;
      s.correct = s.metrics["exact_match,flexible-extract"] > 0;
      s.extra["strict"] = strict;
      s.extra["answer_is"] = ans_is;
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::string path_;
  std::vector<Gsm8kItem> items_;
};
}  // namespace

std::unique_ptr<Task> make_gsm8k_task() { return std::make_unique<Gsm8kTask>(); }

}  // namespace bm
