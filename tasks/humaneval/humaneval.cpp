#include "tasks/humaneval/humaneval.hpp"

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

const std::vector<std::string> kHumanevalStops = {"\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```"};

std::vector<HumanevalProblem> load_humaneval(const std::string& path) {
  std::vector<HumanevalProblem> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    RecordRef r{j, path, line};
    out.push_back({r.str("task_id"), r.str("prompt"), r.str("entry_point"), r.str("canonical_solution"), r.str("test")});
  });
  return out;
}

std::string humaneval_program(const HumanevalProblem& p, const std::string& completion) {
  return p.prompt + completion + "\n" + p.test + "\n" + "check(" + p.entry_point + ")";
}

namespace {
class HumanevalTask : public Task {
 public:
  std::string name() const override { return "humaneval"; }
  std::string label() const override { return "HumanEval"; }
  std::string domain() const override { return "code"; }
  int64_t generation_budget(const std::string&) const override { return 512; }
  // HumanEval has no train split; the mini family writes HumanEval-format
  // prompts of MBPP train functions to humaneval/HumanEval_train.jsonl.gz.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::vector<std::string> out;
    if (file_exists(data_dir + "/humaneval/HumanEval_train.jsonl.gz"))
      for (const auto& h : load_humaneval(data_dir + "/humaneval/HumanEval_train.jsonl.gz")) out.push_back(h.prompt);
    return out;
  }
  std::string version() const override { return "humaneval-1"; }
  std::vector<std::string> metric_names() const override { return {"pass@1"}; }
  std::string headline_metric() const override { return "pass@1"; }
  std::string headline_note() const override { return "greedy pass@1 (one completion per problem), sandboxed, 3 s"; }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval", "mergelm"}); }
  bool needs_sandbox() const override { return true; }
  void load(const std::string& data_dir) override {
    std::string p = data_dir + "/humaneval/HumanEval.jsonl";
    path_ = file_exists(p) ? p
                           : require_data_file(data_dir, "humaneval/HumanEval.jsonl.gz", "HumanEval",
                                               "openai/human-eval data/HumanEval.jsonl.gz");
    items_ = load_humaneval(path_);
  }
  std::vector<std::string> data_files() const override { return {path_}; }
  std::vector<DataSource> data_sources() const override {
    return {
      {"humaneval/HumanEval.jsonl.gz",
       "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
       "https://raw.githubusercontent.com/openai/human-eval/6d43fb980f9fee3c892a914eda09951f772ad10d/data/HumanEval.jsonl.gz"}};
  }
  std::string data_format() const override { return "jsonl"; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return items_[i].task_id; }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<GenerateRequest> reqs;
    for (size_t i : idx) {
      GenerateRequest r;
      const auto& p = items_[i];
      if (ctx.template_name == "mergelm") {
        r.prompt = alpaca_prompt("Create a Python script for this problem:\n" + p.prompt);
        r.until = {};
      } else if (is_chat_format(ctx.template_name)) {
        r.prompt = chat_prompt(ctx.template_name, "Complete the following Python function:\n```python\n" + p.prompt + "\n```");
        r.until = {"</s>"};
      } else {
        r.prompt = p.prompt;
        r.until = kHumanevalStops;
      }
      r.max_new_tokens = ctx.max_new_tokens > 0 ? ctx.max_new_tokens : generation_budget(ctx.template_name);
      reqs.push_back(std::move(r));
    }
    auto res = lm.generate(reqs);
    if (res.size() != reqs.size()) fail("LanguageModel::generate", "returned the wrong number of results; engine bug");
    std::vector<std::string> programs, completions;
    for (size_t k = 0; k < idx.size(); ++k) {
      const auto& p = items_[idx[k]];
      std::string raw = cut_at_stop(res[k].text, reqs[k].until);
      // Native prompts continue the function body; instruction templates answer with a
      // code block that redefines the function after the prompt's stub.
      std::string completion = ctx.template_name == "lm-eval" ? raw : "\n" + extract_code_block(raw);
      completions.push_back(completion);
      programs.push_back(humaneval_program(p, completion));
    }
    auto runs = run_python_programs(programs, ctx.sandbox);
    std::vector<Sample> out;
    for (size_t k = 0; k < idx.size(); ++k) {
      Sample s;
      s.task = "humaneval";
      s.id = items_[idx[k]].task_id;
      s.prompt = reqs[k].prompt;
      s.raw_output = cut_at_stop(res[k].text, reqs[k].until);
      s.extracted = completions[k];
      s.gold = items_[idx[k]].canonical_solution;
      set_exec_verdict(s, runs[k]);
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::string path_;
  std::vector<HumanevalProblem> items_;
};
}  // namespace

std::unique_ptr<Task> make_humaneval_task() { return std::make_unique<HumanevalTask>(); }

}  // namespace bm
