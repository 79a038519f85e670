// A LanguageModel for tests: log-likelihoods are a deterministic hash of
// (context, continuation); generations come from a callback. Records requests.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "harness/engine/requests.hpp"

namespace bmtest {

class FakeLM : public bm::LanguageModel {
 public:
  std::function<std::string(const bm::GenerateRequest&)> gen = [](const bm::GenerateRequest&) { return std::string(); };
  std::vector<bm::LoglikelihoodRequest> ll_reqs;
  std::vector<bm::GenerateRequest> gen_reqs;

  static double fake_logprob(const std::string& ctx, const std::string& cont) {
    uint64_t h = 1469598103934665603ull;
    for (char c : ctx + "\x01" + cont) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return -static_cast<double>(h % 100000) / 1000.0;  // in (-100, 0]
  }
  std::vector<bm::LoglikelihoodResult> loglikelihood(const std::vector<bm::LoglikelihoodRequest>& reqs) override {
    std::vector<bm::LoglikelihoodResult> out;
    for (const auto& r : reqs) {
      ll_reqs.push_back(r);
      bm::LoglikelihoodResult x;
      x.logprob = fake_logprob(r.context, r.continuation);
      out.push_back(x);
    }
    return out;
  }
  std::vector<bm::GenerateResult> generate(const std::vector<bm::GenerateRequest>& reqs) override {
    std::vector<bm::GenerateResult> out;
    for (const auto& r : reqs) {
      gen_reqs.push_back(r);
      bm::GenerateResult g;
      g.text = gen(r);
      out.push_back(g);
    }
    return out;
  }
  std::string description() const override { return "fake"; }
};

}  // namespace bmtest
