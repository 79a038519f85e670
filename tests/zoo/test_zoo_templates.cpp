// Issue 15 items 4 and 5 on the replica zoo: per-expert chat templates equal
// what the repos' own chat_template (transformers' apply_chat_template) or
// model cards give, and BOS is decided as lm-evaluation-harness 0.4.x decides
// it on the real checkpoints (tokenizer_config.json add_bos_token), compared
// with lm-eval's own request construction (tests/zoo/lmeval_oracle.py).
#define ZOO_WORK "zoo_templates_test"
#include "tests/zoo/zoo_util.hpp"

#include "harness/engine/engine.hpp"
#include "harness/models/tokenizer_config.hpp"
#include "harness/runner/grid.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/task.hpp"
#include "tasks/common/templates.hpp"

namespace {

// Runs of spaces: SentencePiece (tokenizer.model, what bitmerge uses, as
// lm-eval with a slow tokenizer) and the BPE of tokenizer.json that
// transformers 5 always uses split them differently ("  How": "▁" "▁How" vs
// "▁▁" "How"), a known difference of docs/checkpoints.md unrelated to BOS and
// templates: ids of such texts are not compared with the oracle (their
// strings, and their BOS, are).
bool has_space_run(const std::string& s) { return s.find("  ") != std::string::npos; }

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::string text = bm::read_text_file(path);
  size_t a = 0;
  while (a < text.size()) {
    size_t b = text.find('\n', a);
    if (b == std::string::npos) b = text.size();
    if (b > a) out.push_back(json::parse(text.substr(a, b - a)));
    a = b + 1;
  }
  return out;
}

// A LanguageModel that records requests and answers nothing useful.
class Recorder : public bm::LanguageModel {
 public:
  std::vector<bm::LoglikelihoodRequest> ll;
  std::vector<bm::GenerateRequest> gen;
  std::vector<bm::LoglikelihoodResult> loglikelihood(const std::vector<bm::LoglikelihoodRequest>& r) override {
    ll.insert(ll.end(), r.begin(), r.end());
    return std::vector<bm::LoglikelihoodResult>(r.size());
  }
  std::vector<bm::GenerateResult> generate(const std::vector<bm::GenerateRequest>& r) override {
    gen.insert(gen.end(), r.begin(), r.end());
    return std::vector<bm::GenerateResult>(r.size());
  }
  std::string description() const override { return "recorder"; }
};

class ZooTemplates : public Zoo {
 protected:
  // User messages: edge cases of the templates (strip, newlines, code, UTF-8)
  // and real task text (a GSM8K question, an MMLU context).
  static std::vector<std::string> messages_;
  static std::string reqs_none_, reqs_chat_, reqs_inst_;  // `bitmerge requests` dumps (no tokenizer)
  static json in_, out_;                                   // oracle input / output
  static std::vector<std::string> ll_models_;              // replicas whose requests the oracle encoded

  static void SetUpTestSuite() {
    Zoo::SetUpTestSuite();
    if (HasFatalFailure()) return;
    // The task requests bitmerge eval would issue (lm-eval prompts, and the two [INST] formats).
    reqs_none_ = work_ + "/reqs-none.jsonl";
    reqs_chat_ = work_ + "/reqs-llama2-chat.jsonl";
    reqs_inst_ = work_ + "/reqs-mistral-inst.jsonl";
    using SP = std::pair<std::string, std::string>;
    for (const auto& [file, tmpl] : std::vector<SP>{{reqs_none_, ""}, {reqs_chat_, "llama2-chat"}, {reqs_inst_, "mistral-inst"}}) {
      auto r = sh(bin() + " requests --tasks mmlu,hellaswag,gsm8k --limit 2 --output " + q(file) +
                  (tmpl.empty() ? "" : " --template " + tmpl));
      ASSERT_EQ(r.rc, 0) << r.out;
    }
    auto none = read_jsonl(reqs_none_);
    std::string gsm_q, mmlu_ctx;
    for (auto& j : none) {
      if (j["task"] == "mmlu" && mmlu_ctx.empty()) mmlu_ctx = j["context"];
    }
    auto gsm = bm::make_task("gsm8k");
    gsm->load(env("BITMERGE_DATA_DIR"));
    {
      Recorder rec;
      bm::RunContext ctx;
      ctx.template_name = "alpaca";
      (void)gsm->run(rec, {0}, ctx);
      // The alpaca prompt's instruction is the question itself.
      const std::string& p = rec.gen.at(0).prompt;
      size_t a = p.find("### Instruction:\n") + 17, b = p.rfind("\n\n### Response:");
      gsm_q = p.substr(a, b - a);
    }
    ASSERT_FALSE(mmlu_ctx.empty());
    ASSERT_GT(gsm_q.size(), 20u);
    messages_ = {"What is 2+2?",
                 "  leading and trailing spaces \n",
                 "Line one\nLine two\n\nafter a blank line",
                 "Write a function:\n```python\ndef add(a, b):\n    return a + b\n```",
                 "Unicode: caf\xc3\xa9, na\xc3\xafve, \xe6\x97\xa5\xe6\x9c\xac \xe2\x80\x94 dash",
                 gsm_q,
                 mmlu_ctx};

    in_ = {{"models", json::object()}, {"chat", json::array()}, {"card", json::array()}, {"requests", json::array()}};
    for (auto& [id, base] : kRepos) in_["models"][local(id)] = dir(local(id));
    for (auto& m : messages_) {
      for (auto* name : {"Llama-2-7b-chat-hf", "Llama-2-13b-chat-hf", "Mistral-7B-Instruct-v0.1"})
        in_["chat"].push_back({{"model", name}, {"user", m}, {"system", nullptr}});
      in_["chat"].push_back({{"model", "Llama-2-7b-chat-hf"}, {"user", m}, {"system", "You are concise.\nAnswer briefly."}});
      for (auto* f : {"alpaca", "mrm8488-coder"}) in_["card"].push_back({{"format", f}, {"user", m}});
    }
    // Loglikelihood and generate requests of the tasks, on every replica, plus
    // the edge cases of lm-eval's split (empty context, trailing spaces).
    std::vector<json> reqs = none;
    reqs.push_back({{"type", "loglikelihood"}, {"context", ""}, {"continuation", "Hello world"}});
    reqs.push_back({{"type", "loglikelihood"}, {"context", "The answer is  "}, {"continuation", "42"}});
    for (auto& [id, base] : kRepos) {
      ll_models_.push_back(local(id));
      for (auto& r : reqs) {
        json x = r.value("type", "") == "generate" ? json{{"type", "generate"}, {"prompt", r["prompt"]}}
                                                   : json{{"type", "loglikelihood"},
                                                          {"context", r["context"]},
                                                          {"continuation", r["continuation"]}};
        x["model"] = local(id);
        in_["requests"].push_back(x);
      }
    }
    // Chat-formatted task requests on the chat replicas (the text starts with "<s>").
    for (const auto& [file, name] : std::vector<SP>{{reqs_chat_, "Llama-2-7b-chat-hf"}, {reqs_inst_, "Mistral-7B-Instruct-v0.1"}})
      for (auto& r : read_jsonl(file)) {
        json x = r["type"] == "generate" ? json{{"type", "generate"}, {"prompt", r["prompt"]}}
                                         : json{{"type", "loglikelihood"}, {"context", r["context"]},
                                                {"continuation", r["continuation"]}};
        x["model"] = name;
        in_["requests"].push_back(x);
      }
    const std::string in = work_ + "/oracle-in.json", out = work_ + "/oracle-out.json";
    bm::write_file_atomic(in, in_.dump(1));
    auto r = sh(q(env("BITMERGE_TEST_PYTHON")) + " " + q(env("BITMERGE_SOURCE_DIR") + "/tests/zoo/lmeval_oracle.py") +
                " " + q(in) + " " + q(out));
    ASSERT_EQ(r.rc, 0) << r.out;
    out_ = json::parse(bm::read_text_file(out));
    ASSERT_EQ(out_["chat"].size(), in_["chat"].size());
    ASSERT_EQ(out_["requests"].size(), in_["requests"].size());
  }

  static std::shared_ptr<bm::Tokenizer> tokenizer(const std::string& name) {
    static std::map<std::string, std::shared_ptr<bm::Tokenizer>> cache;
    auto& t = cache[name];
    if (!t) t = bm::Tokenizer::load_for_model_dir(dir(name), base_of(name), nullptr);
    return t;
  }
  static std::vector<int64_t> ids(const json& j) { return j.get<std::vector<int64_t>>(); }
};
std::vector<std::string> ZooTemplates::messages_;
std::string ZooTemplates::reqs_none_, ZooTemplates::reqs_chat_, ZooTemplates::reqs_inst_;
json ZooTemplates::in_, ZooTemplates::out_;
std::vector<std::string> ZooTemplates::ll_models_;

}  // namespace

// llama2-chat and mistral-inst equal the replicas' chat_template (the real
// repos' strings) through apply_chat_template, string for string, and the
// engine's ids equal lm-eval's for that text: one BOS, never two, whatever
// add_bos says.
TEST_F(ZooTemplates, ChatFormatsEqualApplyChatTemplate) {
  size_t compared = 0;
  for (size_t i = 0; i < in_["chat"].size(); ++i) {
    const json& c = in_["chat"][i];
    const std::string model = c["model"];
    const std::string fmt = model.find("Mistral") != std::string::npos ? "mistral-inst" : "llama2-chat";
    const std::string sys = c["system"].is_null() ? "" : c["system"].get<std::string>();
    const std::string mine = bm::chat_prompt(fmt, c["user"], sys);
    EXPECT_EQ(mine, out_["chat"][i]["text"].get<std::string>()) << model << " message " << c["user"];
    auto tok = tokenizer(model);
    ASSERT_NE(tok, nullptr) << model;
    EXPECT_EQ(out_["chat"][i]["ids"][0], 1) << model;
    EXPECT_NE(out_["chat"][i]["ids"][1], 1) << model;  // the oracle itself: no second BOS
    for (bool add_bos : {true, false}) {
      auto got = bm::encode_text(*tok, mine, add_bos);
      EXPECT_EQ(got.at(0), 1) << model;
      EXPECT_NE(got.at(1), 1) << model;
      if (has_space_run(mine)) continue;
      EXPECT_EQ(got, ids(out_["chat"][i]["ids"])) << model << " " << c["user"];
      ++compared;
    }
  }
  EXPECT_GE(compared, 2u * 3u * 4u);
  // The Mistral-Instruct-v0.1 template keeps the message as is; Llama-2-chat strips it.
  EXPECT_EQ(bm::chat_prompt("mistral-inst", " x\n"), "<s>[INST]  x\n [/INST]");
  EXPECT_EQ(bm::chat_prompt("llama2-chat", " x\n"), "<s>[INST] x [/INST]");
}

// alpaca (MAmmoTH's and Nondzu's cards) and mrm8488-coder (its card's
// create_prompt) equal the cards' prompt functions.
TEST_F(ZooTemplates, CardFormatsEqualTheModelCards) {
  for (size_t i = 0; i < in_["card"].size(); ++i) {
    const json& c = in_["card"][i];
    EXPECT_EQ(bm::chat_prompt(c["format"], c["user"]), out_["card"][i]["text"].get<std::string>())
        << c["format"] << " " << c["user"];
  }
}

// Every chat format is a template of every task (before, "mistral-inst" and
// "alpaca" silently fell back to the lm-eval prompt), and a task's prompt under
// a format is the format applied to the task's instruction.
TEST_F(ZooTemplates, TasksUseTheFormats) {
  for (const auto& name : bm::task_names()) {
    auto t = bm::make_task(name);
    auto sup = t->templates();
    for (const auto& f : bm::chat_format_names())
      EXPECT_NE(std::find(sup.begin(), sup.end(), f), sup.end()) << name << " lacks " << f;
  }
  for (const auto& f : bm::chat_format_names()) {
    Recorder rec;
    bm::EvalOptions o;
    o.data_dir = env("BITMERGE_DATA_DIR");
    o.limit = 1;
    o.progress = false;
    o.templates["*"] = f;
    auto res = bm::evaluate(rec, {"gsm8k", "mmlu"}, o);
    EXPECT_EQ(res.at(0).template_name, f);
    EXPECT_EQ(res.at(1).template_name, f);
    EXPECT_EQ(rec.gen.at(0).prompt, bm::chat_prompt(f, messages_[5])) << f;
    EXPECT_EQ(rec.ll.at(0).context, bm::chat_prompt(f, messages_[6])) << f;
  }
  // `bitmerge requests --template llama2-chat` wrote the same wrapped MMLU context.
  for (auto& j : read_jsonl(reqs_chat_))
    if (j["task"] == "mmlu") {
      EXPECT_EQ(j["context"].get<std::string>(), bm::chat_prompt("llama2-chat", messages_[6]));
      break;
    }
}

// BOS as lm-eval 0.4.x on every replica: by default the checkpoint's
// tokenizer_config.json (add_bos_token: true on all twelve), and the token ids
// of every loglikelihood and generate request equal those lm-eval's HFLM
// builds (_encode_pair / tok_batch_encode / empty context -> prefix token),
// tokenizer.json-only repos included (served by the base's tokenizer.model).
TEST_F(ZooTemplates, BosAndIdsEqualLmEvalRequests) {
  size_t k = 0, checked = 0;
  for (const json& r : in_["requests"]) {
    const std::string model = r["model"];
    const json& want = out_["requests"][k++];
    auto tok = tokenizer(model);
    ASSERT_NE(tok, nullptr) << model;
    auto bos = bm::resolve_add_bos(std::nullopt, "", dir(model));
    EXPECT_TRUE(bos.add_bos) << model << ": " << bos.source;
    EXPECT_NE(bos.source.find(dir(model) + "/tokenizer_config.json add_bos_token"), std::string::npos) << bos.source;
    if (r["type"] == "loglikelihood") {
      auto got = bm::encode_pair(*tok, r["context"], r["continuation"], bos.add_bos);
      EXPECT_EQ(got.first.at(0), 1) << model;
      EXPECT_EQ(want["context_ids"][0], 1) << model;
      if (got.first.size() > 1) EXPECT_NE(got.first.at(1), 1) << model;
      if (has_space_run(r["context"].get<std::string>() + r["continuation"].get<std::string>())) continue;
      EXPECT_EQ(got.first, ids(want["context_ids"])) << model << " context " << r["context"];
      EXPECT_EQ(got.second, ids(want["continuation_ids"])) << model << " continuation " << r["continuation"];
    } else {
      auto got = bm::encode_text(*tok, r["prompt"], bos.add_bos);
      EXPECT_EQ(got.at(0), 1) << model;
      EXPECT_EQ(want["prompt_ids"][0], 1) << model;
      EXPECT_NE(got.at(1), 1) << model;
      if (has_space_run(r["prompt"])) continue;
      EXPECT_EQ(got, ids(want["prompt_ids"])) << model << " prompt " << r["prompt"];
    }
    ++checked;
  }
  EXPECT_GT(checked, 12u * 6u);
}

// The CLI follows the same default: `bitmerge requests --tokenizer DIR` writes
// lm-eval's ids (plain and chat-formatted), and --no-add-bos overrides.
TEST_F(ZooTemplates, RequestsVerbFollowsTokenizerConfig) {
  auto oracle_for = [&](const std::string& model, const json& r) -> json {
    for (size_t k = 0; k < in_["requests"].size(); ++k) {
      const json& x = in_["requests"][k];
      if (x["model"] != model || x["type"] != r["type"]) continue;
      if (r["type"] == "generate" ? x["prompt"] == r["prompt"]
                                  : x["context"] == r["context"] && x["continuation"] == r["continuation"])
        return out_["requests"][k];
    }
    return json();
  };
  using SP = std::pair<std::string, std::string>;
  for (const auto& [model, tmpl] : std::vector<SP>{{"Llama-2-7b-hf", ""}, {"MAmmoTH-7B", ""}, {"Mistral-7B-v0.1", ""},
                                                  {"Llama-2-7b-chat-hf", "llama2-chat"},
                                                  {"Mistral-7B-Instruct-v0.1", "mistral-inst"}}) {
    const std::string out = work_ + "/req-" + model + ".jsonl";
    auto r = sh(bin() + " requests --tasks mmlu,hellaswag,gsm8k --limit 2 --tokenizer " + q(dir(model)) + " --output " +
                q(out) + (tmpl.empty() ? "" : " --template " + tmpl));
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("add_bos = true (" + dir(model) + "/tokenizer_config.json add_bos_token)"), std::string::npos)
        << r.out;
    int n = 0;
    for (auto& j : read_jsonl(out)) {
      json want = oracle_for(model, j);
      ASSERT_FALSE(want.is_null()) << model << " " << j.dump();
      const std::string text = j["type"] == "generate" ? j["prompt"].get<std::string>()
                                                       : j["context"].get<std::string>() + j["continuation"].get<std::string>();
      if (has_space_run(text)) continue;
      if (j["type"] == "generate") {
        EXPECT_EQ(j["prompt_ids"], want["prompt_ids"]) << model << " " << j["prompt"];
      } else {
        EXPECT_EQ(j["context_ids"], want["context_ids"]) << model << " " << j["context"];
        EXPECT_EQ(j["continuation_ids"], want["continuation_ids"]) << model;
      }
      ++n;
    }
    EXPECT_GT(n, 10) << model;
  }
  // Explicit override: no BOS on plain text, the template's own BOS kept.
  const std::string out = work_ + "/req-nobos.jsonl";
  auto r = sh(bin() + " requests --tasks gsm8k --limit 1 --no-add-bos --tokenizer " + q(dir("Llama-2-7b-hf")) +
              " --output " + q(out));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(read_jsonl(out).at(0)["prompt_ids"][0], 1);
  r = sh(bin() + " requests --tasks gsm8k --limit 1 --no-add-bos --template llama2-chat --tokenizer " +
         q(dir("Llama-2-7b-chat-hf")) + " --output " + q(out));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto p = read_jsonl(out).at(0)["prompt_ids"];
  EXPECT_EQ(p[0], 1);
  EXPECT_NE(p[1], 1);
  r = sh(bin() + " requests --tasks gsm8k --limit 1 --add-bos --no-add-bos --tokenizer " + q(dir("Llama-2-7b-hf")) +
         " --output " + q(out + ".both"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--add-bos / --no-add-bos"), std::string::npos) << r.out;
}

// `bitmerge eval` records the effective choice and its source in results.json.
TEST_F(ZooTemplates, EvalRecordsTheBosChoice) {
  const std::string d = dir("MAmmoTH-7B"), out = work_ + "/eval-mammoth.json";
  auto r = sh(bin() + " eval --model " + q(d) + " --tasks mmlu --limit 1 --output " + q(out));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = json::parse(bm::read_text_file(out));
  EXPECT_EQ(j["settings"]["add_bos"], true);
  EXPECT_EQ(j["settings"]["add_bos_source"], d + "/tokenizer_config.json add_bos_token");
  EXPECT_NE(j["model"]["description"].get<std::string>().find("add_bos=true"), std::string::npos);
  r = sh(bin() + " eval --model " + q(d) + " --tasks mmlu --limit 1 --no-add-bos --output " + q(out));
  ASSERT_EQ(r.rc, 0) << r.out;
  j = json::parse(bm::read_text_file(out));
  EXPECT_EQ(j["settings"]["add_bos"], false);
  EXPECT_EQ(j["settings"]["add_bos_source"], "--no-add-bos");
}

// Experiments: [eval] add_bos unset follows the family base's
// tokenizer_config.json (and lands in the cell key and provenance source); set,
// it wins; an expert whose tokenizer_config.json disagrees with the base's is
// refused in one line naming the file and the key to set.
TEST_F(ZooTemplates, ExperimentBosDecision) {
  ::setenv("BITMERGE_MODELS_DIR", root_.c_str(), 1);
  auto e = bm::runner::load_experiment(env("BITMERGE_SOURCE_DIR") + "/tests/zoo/zoo-llama7b.toml");
  EXPECT_FALSE(e.eval.add_bos.has_value());  // the file leaves it unset
  e.eval.add_bos = false;
  auto d = bm::runner::eval_add_bos(e);
  EXPECT_TRUE(d.resolved);
  EXPECT_FALSE(d.add_bos);
  EXPECT_NE(d.source.find("[eval] add_bos"), std::string::npos) << d.source;
  auto explicit_cells = bm::runner::expand_cells(e, false);
  EXPECT_EQ(explicit_cells.at(0).spec["settings"]["add_bos"], false);
  e.eval.add_bos.reset();
  d = bm::runner::eval_add_bos(e);
  EXPECT_TRUE(d.resolved);
  EXPECT_TRUE(d.add_bos);
  EXPECT_EQ(d.source, dir("Llama-2-7b-hf") + "/tokenizer_config.json add_bos_token");
  auto cells = bm::runner::expand_cells(e, false);
  EXPECT_EQ(cells.at(0).spec["settings"]["add_bos"], true);
  EXPECT_NE(cells.at(0).key, explicit_cells.at(0).key);
  // An expert that says otherwise.
  const std::string tc = dir("MAmmoTH-7B") + "/tokenizer_config.json";
  const std::string saved = bm::read_text_file(tc);
  auto j = json::parse(saved);
  j["add_bos_token"] = false;
  bm::write_file_atomic(tc, j.dump());
  try {
    bm::runner::eval_add_bos(e);
    ADD_FAILURE() << "no error";
  } catch (const bm::Error& err) {
    std::string w = err.what();
    EXPECT_NE(w.find(tc), std::string::npos) << w;
    EXPECT_NE(w.find("[eval] add_bos"), std::string::npos) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
  }
  e.eval.add_bos = true;  // an explicit choice settles it
  EXPECT_TRUE(bm::runner::eval_add_bos(e).add_bos);
  bm::write_file_atomic(tc, saved);
  ::unsetenv("BITMERGE_MODELS_DIR");
}

// Bad input: a malformed tokenizer_config.json, a non-boolean add_bos_token,
// an unknown template name (family file, chat_prompt): one line naming the
// file/key and the fix; eval writes nothing.
TEST_F(ZooTemplates, BadInput) {
  const std::string bad = work_ + "/bad-tc";
  auto r = sh("cp -r " + q(dir("Llama-2-7b-hf")) + " " + q(bad));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto expect_one_line = [](const std::string& w, const std::string& a, const std::string& b) {
    EXPECT_NE(w.find(a), std::string::npos) << w;
    EXPECT_NE(w.find(b), std::string::npos) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
  };
  bm::write_file_atomic(bad + "/tokenizer_config.json", "{\"add_bos_token\": true,");
  try {
    bm::read_tokenizer_config(bad);
    ADD_FAILURE();
  } catch (const bm::Error& e) {
    expect_one_line(e.what(), bad + "/tokenizer_config.json", "not valid JSON");
  }
  const std::string out = work_ + "/bad-eval.json";
  r = sh(bin() + " eval --model " + q(bad) + " --tasks mmlu --limit 1 --output " + q(out));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find(bad + "/tokenizer_config.json: not valid JSON"), std::string::npos) << r.out;
  EXPECT_FALSE(bm::file_exists(out));
  // An explicit choice does not need the file.
  r = sh(bin() + " eval --model " + q(bad) + " --tasks mmlu --limit 1 --add-bos --output " + q(out));
  EXPECT_EQ(r.rc, 0) << r.out;
  bm::write_file_atomic(bad + "/tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
  try {
    bm::resolve_add_bos(std::nullopt, "", bad);
    ADD_FAILURE();
  } catch (const bm::Error& e) {
    expect_one_line(e.what(), bad + "/tokenizer_config.json: add_bos_token", "--no-add-bos");
  }
  bm::write_file_atomic(bad + "/tokenizer_config.json", "[1, 2]");
  EXPECT_THROW(bm::read_tokenizer_config(bad), bm::Error);
  // No add_bos_token: LlamaTokenizer's default (true); no file: false.
  bm::write_file_atomic(bad + "/tokenizer_config.json", "{\"tokenizer_class\": \"LlamaTokenizer\"}");
  EXPECT_TRUE(bm::resolve_add_bos(std::nullopt, "", bad).add_bos);
  ASSERT_EQ(sh("rm " + q(bad + "/tokenizer_config.json")).rc, 0);
  auto none = bm::resolve_add_bos(std::nullopt, "", bad);
  EXPECT_FALSE(none.add_bos);
  EXPECT_NE(none.source.find("no tokenizer_config.json"), std::string::npos) << none.source;

  try {
    bm::chat_prompt("llama-chat", "x");
    ADD_FAILURE();
  } catch (const bm::Error& e) {
    expect_one_line(e.what(), "llama2-chat", "use one of");
  }
  // A family file naming an unknown template.
  const std::string fam = work_ + "/bad-family.toml";
  std::string text = bm::read_text_file(env("BITMERGE_SOURCE_DIR") + "/configs/families/llama2-7b.toml");
  text.replace(text.find("template = \"mrm8488-coder\""), 26, "template = \"mrm8488\"      ");
  bm::write_file_atomic(fam, text);
  try {
    bm::runner::load_family(fam);
    ADD_FAILURE();
  } catch (const bm::Error& e) {
    expect_one_line(e.what(), fam, "experts.code.template");
    EXPECT_NE(std::string(e.what()).find("mrm8488-coder"), std::string::npos) << e.what();
  }
}

// The mini family keeps its behaviour: its experiments set add_bos = false
// explicitly, its checkpoints have no tokenizer_config.json, and the cell keys
// of results/mini (which `make` compares) are the ones expand_cells computes.
TEST_F(ZooTemplates, MiniUnchanged) {
  const std::string src = env("BITMERGE_SOURCE_DIR");
  for (auto* name : {"mini-table1", "mini-table2", "mini-table7", "mini-fig2", "mini-fig3"}) {
    auto e = bm::runner::load_experiment(src + "/configs/experiments/" + name + ".toml");
    ASSERT_TRUE(e.eval.add_bos.has_value()) << name;
    EXPECT_FALSE(*e.eval.add_bos) << name;
    EXPECT_EQ(e.eval.template_mode, "none") << name;
    const std::string base = bm::runner::resolve_model_dir(e.family, e.family.base, bm::runner::repo_root());
    EXPECT_FALSE(bm::file_exists(base + "/tokenizer_config.json")) << base;
    EXPECT_FALSE(bm::resolve_add_bos(std::nullopt, "", base).add_bos) << base;
    const std::string res = src + "/results/mini/" + name + "/results.json";
    if (!bm::file_exists(res)) continue;
    auto j = json::parse(bm::read_text_file(res));
    std::map<std::pair<std::string, std::string>, std::string> want;
    for (auto& c : j["cells"]) want[{c["variant"], c["benchmark"]}] = c["key"];
    size_t n = 0;
    for (auto& c : bm::runner::expand_cells(e, true)) {
      auto it = want.find({c.variant, c.benchmark});
      if (it == want.end()) continue;
      EXPECT_EQ(c.key, it->second) << name << " " << c.variant << " " << c.benchmark;
      ++n;
    }
    EXPECT_GT(n, 0u) << name;
  }
}
