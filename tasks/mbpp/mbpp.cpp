#include "tasks/mbpp/mbpp.hpp"

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

const std::vector<std::string> kMbppStops = {"\nclass", "\nassert", "\n\"\"\"", "\nprint", "\nif", "\n```"};

static std::vector<std::string> string_list(const RecordRef& r, const char* key) {
  const auto& v = r.at(key);
  if (!v.is_array()) r.bad(std::string("'") + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& x : v) {
    if (!x.is_string()) r.bad(std::string("'") + key + "' must be a list of strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

std::vector<MbppProblem> load_mbpp_jsonl(const std::string& path) {
  std::vector<MbppProblem> out;
  for_each_jsonl(path, [&](const nlohmann::ordered_json& j, int64_t line) {
    RecordRef r{j, path, line};
    MbppProblem p;
    p.task_id = r.integer("task_id");
    p.text = r.str("text");
    p.code = r.str("code");
    p.test_setup_code = j.contains("test_setup_code") ? r.str("test_setup_code") : "";
    p.test_list = string_list(r, "test_list");
    if (p.test_list.empty()) r.bad("'test_list' is empty");
    out.push_back(std::move(p));
  });
  return out;
}

std::vector<MbppProblem> load_mbpp_sanitized(const std::string& path) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("malformed JSON (") + e.what() + "); re-fetch the file");
  }
  if (!j.is_array()) fail(path, "expected a JSON list of problems; re-fetch the file");
  std::vector<MbppProblem> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object()) fail(path + " item " + std::to_string(i), "malformed record: not an object; re-fetch the file");
    RecordRef r{j[i], path, 0};
    try {
      MbppProblem p;
      p.task_id = r.integer("task_id");
      p.text = r.str("prompt");
      p.code = r.str("code");
      p.test_setup_code = j[i].contains("test_imports") ? join(string_list(r, "test_imports"), "\n") : "";
      p.test_list = string_list(r, "test_list");
      out.push_back(std::move(p));
    } catch (const Error& e) {
      fail(path + " item " + std::to_string(i), e.what());
    }
  }
  return out;
}

std::vector<MbppProblem> mbpp_test_split(const std::vector<MbppProblem>& all) {
  std::vector<MbppProblem> out;
  for (const auto& p : all)
    if (p.task_id >= 11 && p.task_id <= 510) out.push_back(p);
  return out;
}

std::string mbpp_prompt(const MbppProblem& p) { return "\"\"\"\n" + p.text + "\n" + p.test_list[0] + "\n\"\"\"\n"; }

std::string mbpp_program(const MbppProblem& p, const std::string& code) {
  std::string s = code + "\n";
  if (!p.test_setup_code.empty()) s += p.test_setup_code + "\n";
  return s + join(p.test_list, "\n") + "\n";
}

namespace {
class MbppTask : public Task {
 public:
  explicit MbppTask(bool sanitized) : sanitized_(sanitized) {}
  std::string name() const override { return sanitized_ ? "mbpp_sanitized" : "mbpp"; }
  std::string label() const override { return sanitized_ ? "MBPP (sanitized)" : "MBPP"; }
  std::string domain() const override { return "code"; }
  int64_t generation_budget(const std::string&) const override { return 512; }
  // The router's code anchor: task_ids 601..974 of mbpp.jsonl (MBPP's train split), required.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::string p = data_dir + "/mbpp/mbpp.jsonl";
    if (!file_exists(p)) fail(p, "missing: the router's code domain trains on MBPP 601..974; fetch the data");
    std::vector<std::string> out;
    for_each_jsonl(p, [&](const nlohmann::ordered_json& j, int64_t) {
      int64_t id = j.at("task_id").get<int64_t>();
      if (id < 601 || id > 974) return;
      MbppProblem q;
      q.text = j.at("text").get<std::string>();
      q.test_list = {j.at("test_list").empty() ? "" : j.at("test_list")[0].get<std::string>()};
      out.push_back(mbpp_prompt(q));
    });
    return out;
  }
  std::string version() const override { return sanitized_ ? "mbpp_sanitized-1" : "mbpp-1"; }
  std::vector<std::string> metric_names() const override { return {"pass@1"}; }
  std::string headline_metric() const override { return "pass@1"; }
  std::string headline_note() const override { return "greedy pass@1 on task_ids 11..510, sandboxed, 3 s"; }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval", "mergelm"}); }
  bool needs_sandbox() const override { return true; }
  void load(const std::string& data_dir) override {
    if (sanitized_) {
      path_ = require_data_file(data_dir, "mbpp/sanitized-mbpp.json", "MBPP", "google-research mbpp/sanitized-mbpp.json");
      items_ = mbpp_test_split(load_mbpp_sanitized(path_));
    } else {
      path_ = require_data_file(data_dir, "mbpp/mbpp.jsonl", "MBPP", "google-research mbpp/mbpp.jsonl");
      items_ = mbpp_test_split(load_mbpp_jsonl(path_));
    }
  }
  std::vector<std::string> data_files() const override { return {path_}; }
  // mbpp.jsonl also for the sanitized task: its router prompts (601..974) come from there.
  std::vector<DataSource> data_sources() const override {
    if (sanitized_)
      return {
          {"mbpp/sanitized-mbpp.json",
           "7fec016546acaee11dbe14f9f0bb670e59f41919f7b522a59fba34871da78551",
           "https://raw.githubusercontent.com/patdfb/TPC-EES/30c8c572bfcd0fc5fa537210710d7fde134e4868/mbpp/sanitized-mbpp.json"},
          {"mbpp/mbpp.jsonl",
           "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f",
           "https://raw.githubusercontent.com/patdfb/TPC-EES/30c8c572bfcd0fc5fa537210710d7fde134e4868/mbpp/mbpp.jsonl"}};
    return {
      {"mbpp/mbpp.jsonl",
       "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f",
       "https://raw.githubusercontent.com/patdfb/TPC-EES/30c8c572bfcd0fc5fa537210710d7fde134e4868/mbpp/mbpp.jsonl"}};
  }
  std::string data_format() const override { return sanitized_ ? "sanitized-json" : "jsonl"; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return std::to_string(items_[i].task_id); }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<GenerateRequest> reqs;
    for (size_t i : idx) {
      const auto& p = items_[i];
      GenerateRequest r;
      std::string ask = p.text + "\nYour code should pass this test:\n" + p.test_list[0];
      if (ctx.template_name == "mergelm") {
        r.prompt = alpaca_prompt("Create a Python script for this problem:\n" + ask);
      } else if (is_chat_format(ctx.template_name)) {
        r.prompt = chat_prompt(ctx.template_name, ask);
        r.until = {"</s>"};
      } else {
        r.prompt = mbpp_prompt(p);
        r.until = kMbppStops;
      }
      r.max_new_tokens = ctx.max_new_tokens > 0 ? ctx.max_new_tokens : generation_budget(ctx.template_name);
      reqs.push_back(std::move(r));
    }
    auto res = lm.generate(reqs);
    if (res.size() != reqs.size()) fail("LanguageModel::generate", "returned the wrong number of results; engine bug");
    std::vector<std::string> programs, codes;
    for (size_t k = 0; k < idx.size(); ++k) {
      std::string raw = cut_at_stop(res[k].text, reqs[k].until);
      std::string code = ctx.template_name == "lm-eval" ? reqs[k].prompt + raw : extract_code_block(raw);
      codes.push_back(code);
      programs.push_back(mbpp_program(items_[idx[k]], code));
    }
    auto runs = run_python_programs(programs, ctx.sandbox);
    std::vector<Sample> out;
    for (size_t k = 0; k < idx.size(); ++k) {
      Sample s;
      s.task = name();
      s.id = item_id(idx[k]);
      s.prompt = reqs[k].prompt;
      s.raw_output = cut_at_stop(res[k].text, reqs[k].until);
      s.extracted = codes[k];
      s.gold = items_[idx[k]].code;
      set_exec_verdict(s, runs[k]);
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  bool sanitized_;
  std::string path_;
  std::vector<MbppProblem> items_;
};
}  // namespace

std::unique_ptr<Task> make_mbpp_task() { return std::make_unique<MbppTask>(false); }
std::unique_ptr<Task> make_mbpp_sanitized_task() { return std::make_unique<MbppTask>(true); }

}  // namespace bm
