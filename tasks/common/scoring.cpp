#include "tasks/common/scoring.hpp"

#include <cmath>

#include "harness/core/error.hpp"
#include "tasks/common/io.hpp"

namespace bm {

std::vector<std::vector<LoglikelihoodResult>> score_choices(LanguageModel& lm, const std::vector<McItem>& items) {
  std::vector<LoglikelihoodRequest> reqs;
  for (const auto& it : items)
    for (const auto& c : it.choices) {
      LoglikelihoodRequest r;
      r.context = it.context;
      r.continuation = " " + c;
      reqs.push_back(std::move(r));
    }
  auto res = lm.loglikelihood(reqs);
  if (res.size() != reqs.size())
    fail("LanguageModel::loglikelihood", "returned " + std::to_string(res.size()) + " results for " +
                                             std::to_string(reqs.size()) + " requests; this is an engine bug");
  std::vector<std::vector<LoglikelihoodResult>> out;
  size_t k = 0;
  for (const auto& it : items) {
    out.emplace_back(res.begin() + k, res.begin() + k + it.choices.size());
    k += it.choices.size();
  }
  return out;
}

size_t argmax(const std::vector<double>& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best] || (std::isnan(v[best]) && !std::isnan(v[i]))) best = i;
  return best;
}

Sample mc_sample(const std::string& task, const McItem& item, const std::vector<LoglikelihoodResult>& ll,
                 bool with_norm) {
  Sample s;
  s.task = task;
  s.id = item.id;
  s.prompt = item.context;
  std::vector<double> lp, norm;
  for (size_t i = 0; i < ll.size(); ++i) {
    lp.push_back(ll[i].logprob);
    norm.push_back(ll[i].logprob / static_cast<double>(utf8_length(item.choices[i])));
  }
  size_t pred = argmax(lp), pred_norm = argmax(norm);
  s.metrics["acc"] = pred == static_cast<size_t>(item.gold) ? 1.0 : 0.0;
  if (with_norm) s.metrics["acc_norm"] = pred_norm == static_cast<size_t>(item.gold) ? 1.0 : 0.0;
  size_t shown = with_norm ? pred_norm : pred;
  s.extracted = item.choices[shown];
  s.gold = item.choices[item.gold];
  s.correct = shown == static_cast<size_t>(item.gold);
  s.extra["choices"] = item.choices;
  s.extra["loglikelihoods"] = lp;
  s.extra["gold_index"] = item.gold;
  s.extra["pred_index"] = pred;
  if (with_norm) s.extra["pred_norm_index"] = pred_norm;
  return s;
}

std::string py_capitalize(const std::string& s) {
  std::string out = s;
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = out[i];
    if (i == 0) {
      if (c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 32);
    } else if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c + 32);
    }
  }
  return out;
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (k <= 0 || n <= 0 || c < 0 || c > n) fail("pass@k", "needs 0 <= c <= n and k >= 1 (n=" + std::to_string(n) +
                                                             ", c=" + std::to_string(c) + ", k=" + std::to_string(k) + ")");
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

std::string cut_at_stop(const std::string& text, const std::vector<std::string>& until) {
  size_t cut = text.size();
  for (const auto& u : until) {
    if (u.empty()) continue;
    size_t f = text.find(u);
    if (f != std::string::npos && f < cut) cut = f;
  }
  return text.substr(0, cut);
}

void set_exec_verdict(Sample& s, const ProgramResult& run) {
  s.correct = run.passed();
  s.metrics["pass@1"] = s.correct ? 1.0 : 0.0;
  s.extra["status"] = run.status;
  s.extra["exec_output"] = run.output.substr(0, 2000);
}

}  // namespace bm
