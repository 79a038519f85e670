// Request construction against lm-eval's own templates/utils on the same
// records, metrics on a fake model, and the eval driver (subsets, templates,
// samples).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "fake_lm.hpp"
#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "oracle.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/gsm8k/gsm8k.hpp"
#include "tasks/hellaswag/hellaswag.hpp"
#include "tasks/mmlu/mmlu.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"

using nlohmann::json;

static std::vector<size_t> all_idx(size_t n, size_t step = 1) {
  std::vector<size_t> v;
  for (size_t i = 0; i < n; i += step) v.push_back(i);
  return v;
}

TEST(MmluRequests, MatchLmEvalTemplateAndAcc) {
  auto task = bm::make_task("mmlu");
  task->load(bmtest::data_dir());
  auto qs = bm::load_mmlu_dir(bmtest::data_dir() + "/mmlu/test");
  auto idx = all_idx(qs.size(), 23);
  bmtest::FakeLM lm;
  bm::RunContext ctx;
  ctx.template_name = "lm-eval";
  auto samples = task->run(lm, idx, ctx);
  ASSERT_EQ(lm.ll_reqs.size(), 4 * idx.size());
  json docs = json::array();
  for (size_t i : idx) docs.push_back({{"subject", qs[i].subject}, {"question", qs[i].question}, {"choices", qs[i].choices}});
  auto py = bmtest::run_python(bmtest::py_prelude() + R"(
import yaml, jinja2
base = yaml.safe_load(open(os.path.join(TASKS, 'mmlu/default/_default_template_yaml')))
env = jinja2.Environment()
tmpl = env.from_string(base['doc_to_text'])
out = []
for d in inp:
    desc = yaml.safe_load(open(os.path.join(TASKS, 'mmlu/default/mmlu_%s.yaml' % d['subject'])))['description']
    out.append({'context': desc + tmpl.render(question=d['question'], choices=d['choices']),
                'continuations': [' ' + c for c in base['doc_to_choice']]})
json.dump(out, open(sys.argv[2], 'w'))
)", docs, "mmlu");
  double acc = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    for (size_t c = 0; c < 4; ++c) {
      const auto& r = lm.ll_reqs[4 * k + c];
      EXPECT_EQ(r.context, py[k]["context"].get<std::string>()) << idx[k];
      EXPECT_EQ(r.continuation, py[k]["continuations"][c].get<std::string>());
    }
    std::vector<double> lp;
    for (size_t c = 0; c < 4; ++c) lp.push_back(lm.ll_reqs[4 * k + c].context.empty() ? 0 : bmtest::FakeLM::fake_logprob(
                                                    lm.ll_reqs[4 * k + c].context, lm.ll_reqs[4 * k + c].continuation));
    double want = bm::argmax(lp) == static_cast<size_t>(qs[idx[k]].answer) ? 1.0 : 0.0;
    EXPECT_EQ(samples[k].metrics.at("acc"), want);
    acc += want;
  }
  EXPECT_GT(acc, 0);  // the fake model is right on some items and wrong on others
  EXPECT_LT(acc, idx.size());
}

TEST(HellaswagRequests, JsonlPathMatchesLmEvalProcessDocs) {
  // rowanz-style records built from the real items (ctx split at the last ". "),
  // run through lm-eval's process_docs and through our JSONL loader.
  auto text = bm::split_lines(bm::read_maybe_gz(bmtest::data_dir() + "/hellaswag/hellaswag_val_full.txt.gz"));
  json recs = json::array();
  std::string lines;
  for (size_t i = 0; i + 5 < text.size(); i += 6) {
    const std::string& l = text[i];
    size_t colon = l.find(": ");
    std::string label = l.substr(0, colon), ctx = l.substr(colon + 2);
    size_t dot = ctx.rfind(". ");
    std::string a = dot == std::string::npos ? ctx : ctx.substr(0, dot + 1);
    std::string b = dot == std::string::npos ? "" : ctx.substr(dot + 2);
    json r = {{"activity_label", label}, {"ctx_a", a}, {"ctx_b", b},
              {"endings", {text[i + 2], text[i + 3], text[i + 4], text[i + 5]}}, {"label", text[i + 1]}};
    lines += r.dump() + "\n";
    recs.push_back(r);
  }
  std::string dir = bmtest::temp_dir("hs_oracle");
  bm::write_file_atomic(dir + "/hellaswag_val.jsonl", lines);
  auto ours = bm::load_hellaswag_jsonl(dir + "/hellaswag_val.jsonl");
  auto txt = bm::load_hellaswag_text(bmtest::data_dir() + "/hellaswag/hellaswag_val_full.txt.gz");
  auto py = bmtest::run_python(bmtest::py_prelude() + R"(
import datasets
u = load_mod('hellaswag/utils.py', 'hs_utils')
ds = u.process_docs(datasets.Dataset.from_list(inp))
json.dump([[d['query'], d['choices'], d['gold']] for d in ds], open(sys.argv[2], 'w'))
)", recs, "hellaswag");
  ASSERT_EQ(py.size(), 10042u);
  ASSERT_EQ(ours.size(), 10042u);
  size_t text_agree = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].query, py[i][0].get<std::string>()) << i;
    EXPECT_EQ(ours[i].endings, py[i][1].get<std::vector<std::string>>()) << i;
    EXPECT_EQ(ours[i].label, py[i][2].get<int>());
    text_agree += txt[i].query == py[i][0].get<std::string>();
    EXPECT_EQ(txt[i].endings, ours[i].endings);
  }
  std::printf("hellaswag text6 contexts equal to the ctx_a/ctx_b split: %zu / %zu\n", text_agree, ours.size());
  // The text format's guessed ctx_b capitalization agrees with this split almost always.
  EXPECT_GT(text_agree, ours.size() * 95 / 100) << text_agree;
  // Requests: context = query, continuations = " " + ending; acc_norm by characters.
  auto task = bm::make_task("hellaswag");
  task->load(bmtest::data_dir());
  bmtest::FakeLM lm;
  bm::RunContext ctx;
  ctx.template_name = "lm-eval";
  auto idx = all_idx(txt.size(), 97);
  auto samples = task->run(lm, idx, ctx);
  for (size_t k = 0; k < idx.size(); ++k) {
    std::vector<double> lp, norm;
    for (int c = 0; c < 4; ++c) {
      const auto& r = lm.ll_reqs[4 * k + c];
      EXPECT_EQ(r.context, txt[idx[k]].query);
      EXPECT_EQ(r.continuation, " " + txt[idx[k]].endings[c]);
      lp.push_back(bmtest::FakeLM::fake_logprob(r.context, r.continuation));
      norm.push_back(lp.back() / bm::utf8_length(txt[idx[k]].endings[c]));
    }
    EXPECT_EQ(samples[k].metrics.at("acc"), bm::argmax(lp) == static_cast<size_t>(txt[idx[k]].label) ? 1.0 : 0.0);
    EXPECT_EQ(samples[k].metrics.at("acc_norm"), bm::argmax(norm) == static_cast<size_t>(txt[idx[k]].label) ? 1.0 : 0.0);
  }
}

TEST(TruthfulqaRequests, MatchLmEvalTemplateAndMc2) {
  auto task = bm::make_task("truthfulqa");
  task->load(bmtest::data_dir());
  auto items = bm::load_truthfulqa_mc(bmtest::data_dir() + "/truthfulqa/mc_task.json");
  bmtest::FakeLM lm;
  bm::RunContext ctx;
  ctx.template_name = "lm-eval";
  auto samples = task->run(lm, all_idx(items.size()), ctx);
  ASSERT_EQ(samples.size(), 817u);
  json docs = json::array();
  size_t k = 0;
  for (const auto& it : items) {
    std::vector<double> ll2;
    k += it.mc1_choices.size();
    for (size_t c = 0; c < it.mc2_choices.size(); ++c, ++k) {
      EXPECT_EQ(lm.ll_reqs[k].continuation, " " + it.mc2_choices[c]);
      ll2.push_back(bmtest::FakeLM::fake_logprob(lm.ll_reqs[k].context, lm.ll_reqs[k].continuation));
    }
    docs.push_back({{"question", it.question}, {"labels", it.mc2_labels}, {"ll", ll2}});
  }
  ASSERT_EQ(k, lm.ll_reqs.size());
  auto py = bmtest::run_python(bmtest::py_prelude() + R"(
import yaml, jinja2
class L(yaml.SafeLoader): pass
L.add_constructor('!function', lambda l, n: None)
cfg = yaml.load(open(os.path.join(TASKS, 'truthfulqa/truthfulqa_mc1.yaml')), Loader=L)
tmpl = jinja2.Environment().from_string(cfg['doc_to_text'])
u = load_mod('truthfulqa/utils.py', 'tq_utils')
out = []
for d in inp:
    mc2 = u.process_results_mc2({'mc2_targets': {'labels': d['labels']}}, [(x, False) for x in d['ll']])['acc']
    out.append([tmpl.render(question=d['question']), float(mc2)])
json.dump(out, open(sys.argv[2], 'w'))
)", docs, "truthfulqa");
  k = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(lm.ll_reqs[k].context, py[i][0].get<std::string>()) << i;
    k += items[i].mc1_choices.size() + items[i].mc2_choices.size();
    EXPECT_NEAR(samples[i].metrics.at("mc2"), py[i][1].get<double>(), 1e-9) << i;
  }
  auto agg = bm::aggregate_metrics(*task, samples);
  EXPECT_GT(agg["mc2"].get<double>(), 0.0);
  EXPECT_EQ(agg["n"].get<int>(), 817);
  EXPECT_EQ(task->headline_metric(), "mc2");
}

// GSM8K generations answering the gold for even items and a wrong number otherwise.
static std::string gsm_answer(const std::vector<bm::Gsm8kItem>& items, const bm::GenerateRequest& r, bool mergelm) {
  for (size_t i = 0; i < items.size(); ++i)
    if (r.prompt.find(items[i].question) != std::string::npos) {
      std::string g = bm::gsm8k_normalize(items[i].answer);
      std::string ans = i % 2 == 0 ? g : g + "1";
      return mergelm ? "Some steps 1 2.\nThe answer is: " + ans : " Steps.\n#### " + ans + "\n\nQuestion: next one";
    }
  return "";
}

TEST(EvalDriver, Gsm8kSubsetsCombineToFullRun) {
  auto items = bm::load_gsm8k(bmtest::data_dir() + "/gsm8k/test.jsonl");
  bmtest::FakeLM lm;
  lm.gen = [&](const bm::GenerateRequest& r) { return gsm_answer(items, r, false); };
  bm::EvalOptions o;
  o.data_dir = bmtest::data_dir();
  o.limit = 40;
  o.progress = false;
  o.chunk_items = 7;
  auto full = bm::evaluate(lm, {"gsm8k"}, o);
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(full[0].samples.size(), 40u);
  EXPECT_DOUBLE_EQ(full[0].metrics["exact_match,strict-match"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(full[0].metrics["exact_match,flexible-extract"].get<double>(), 0.5);
  EXPECT_EQ(full[0].template_name, "lm-eval");
  EXPECT_EQ(lm.gen_reqs[0].prompt, "Question: " + items[0].question + "\nAnswer:");
  EXPECT_NE(std::find(lm.gen_reqs[0].until.begin(), lm.gen_reqs[0].until.end(), "Question:"), lm.gen_reqs[0].until.end());
  EXPECT_EQ(full[0].samples[0].raw_output.find("Question:"), std::string::npos);  // cut at the stop string
  ASSERT_EQ(full[0].data_files.size(), 1u);
  EXPECT_EQ(full[0].data_files[0].second, "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14");

  // The runner's routing: odd ids to one "model", even ids to another, then combine.
  bm::EvalOptions a = o, b = o;
  a.limit = b.limit = 0;
  for (int i = 0; i < 40; ++i) (i % 3 == 0 ? a : b).item_ids["gsm8k"].push_back(std::to_string(i));
  auto ra = bm::evaluate(lm, {"gsm8k"}, a), rb = bm::evaluate(lm, {"gsm8k"}, b);
  EXPECT_EQ(ra[0].samples.size() + rb[0].samples.size(), 40u);
  auto comb = bm::combine_results({ra[0], rb[0]});
  EXPECT_EQ(comb.metrics, full[0].metrics);
  EXPECT_THROW(bm::combine_results({ra[0], ra[0]}), bm::Error);
  a.item_ids["gsm8k"].push_back("99999");
  EXPECT_THROW(bm::evaluate(lm, {"gsm8k"}, a), bm::Error);

  // Samples file round trip.
  std::string dir = bmtest::temp_dir("samples");
  bm::write_samples_jsonl(dir + "/s.jsonl", full);
  auto lines = bm::split_lines(bm::read_text_file(dir + "/s.jsonl"));
  ASSERT_EQ(lines.size(), 40u);
  auto s0 = bm::sample_from_json(json::parse(lines[0]));
  EXPECT_EQ(s0.id, "0");
  EXPECT_EQ(s0.gold, bm::gsm8k_normalize(items[0].answer));
  EXPECT_TRUE(s0.correct);
  auto doc = bm::eval_results_json(full, {{"fingerprint", "x"}}, {{"limit", 40}});
  EXPECT_EQ(doc["tasks"]["gsm8k"]["version"], "gsm8k-1");
  EXPECT_EQ(doc["tasks"]["gsm8k"]["template"], "lm-eval");
  EXPECT_EQ(doc["tasks"]["gsm8k"]["headline"]["metric"], "exact_match,flexible-extract");
}

TEST(EvalDriver, TemplatesAreAppliedAndRecorded) {
  auto items = bm::load_gsm8k(bmtest::data_dir() + "/gsm8k/test.jsonl");
  bmtest::FakeLM lm;
  lm.gen = [&](const bm::GenerateRequest& r) { return gsm_answer(items, r, true); };
  bm::EvalOptions o;
  o.data_dir = bmtest::data_dir();
  o.limit = 10;
  o.progress = false;
  o.templates["*"] = "mergelm";
  auto res = bm::evaluate(lm, {"gsm8k", "mmlu"}, o);
  EXPECT_EQ(res[0].template_name, "mergelm");
  EXPECT_EQ(res[1].template_name, "lm-eval");  // mmlu has no mergelm template: its default
  EXPECT_NE(lm.gen_reqs[0].prompt.find("### Instruction:\n" + items[0].question), std::string::npos);
  EXPECT_TRUE(bm::ends_with(lm.gen_reqs[0].prompt, "### Response: Let's think step by step."));
  EXPECT_DOUBLE_EQ(res[0].metrics["exact_match,answer-is"].get<double>(), 0.5);
  o.templates.clear();
  o.templates["mmlu"] = "llama2-chat";
  lm.ll_reqs.clear();
  bm::evaluate(lm, {"mmlu"}, o);
  EXPECT_TRUE(bm::starts_with(lm.ll_reqs[0].context, "<s>[INST] The following are multiple choice questions"));
  EXPECT_TRUE(bm::ends_with(lm.ll_reqs[0].context, "\nAnswer: [/INST]"));
  o.templates["mmlu"] = "mergelm";
  try {
    bm::evaluate(lm, {"mmlu"}, o);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm-eval"), std::string::npos) << e.what();
  }
}

TEST(EvalDriver, MathExtractionThroughTheTask) {
  auto probs = bm::make_task("math500");
  probs->load(bmtest::data_dir());
  bmtest::FakeLM lm;
  int n = 0;
  lm.gen = [&](const bm::GenerateRequest&) {
    ++n;
    return n % 2 ? std::string(" We get $x = 1$ so \\boxed{wrong}.\nProblem: next") : std::string(" The answer is: 7.");
  };
  bm::EvalOptions o;
  o.data_dir = bmtest::data_dir();
  o.limit = 6;
  o.progress = false;
  auto r = bm::evaluate(lm, {"math500"}, o);
  ASSERT_EQ(r[0].samples.size(), 6u);
  EXPECT_EQ(r[0].samples[0].extracted, "wrong");
  EXPECT_EQ(r[0].samples[1].extracted, "7");
  EXPECT_EQ(r[0].samples[0].raw_output.find("Problem:"), std::string::npos);
  EXPECT_TRUE(bm::starts_with(lm.gen_reqs[0].prompt, "Problem: "));
  EXPECT_TRUE(bm::ends_with(lm.gen_reqs[0].prompt, "\nAnswer:"));
}

TEST(EvalDriver, PreflightCatchesBadInputsBeforeAnyModelWork) {
  bm::EvalOptions o;
  o.data_dir = bmtest::data_dir();
  EXPECT_NO_THROW(bm::check_eval_inputs({"gsm8k", "truthfulqa"}, o));
  bm::EvalOptions bad = o;
  bad.data_dir = bmtest::temp_dir("nodata");
  EXPECT_THROW(bm::check_eval_inputs({"gsm8k"}, bad), bm::Error);
  bad = o;
  bad.templates["truthfulqa"] = "mergelm";
  EXPECT_THROW(bm::check_eval_inputs({"truthfulqa"}, bad), bm::Error);
  bad = o;
  bad.item_ids["gsm8k"] = {"0", "1319"};
  EXPECT_THROW(bm::check_eval_inputs({"gsm8k"}, bad), bm::Error);
  EXPECT_THROW(bm::parse_task_list("gsm8k,mmlu2"), bm::Error);
  EXPECT_EQ(bm::parse_task_list("all").size(), 7u);
}
