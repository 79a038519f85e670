#include "harness/train/tokenizer_train.hpp"

#include <sentencepiece_trainer.h>

#include <unordered_map>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm::train {
namespace {

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(std::vector<std::string> lines) : lines_(std::move(lines)) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  std::vector<std::string> lines_;
  size_t i_ = 0;
};

}  // namespace

void train_sentencepiece(const std::vector<std::string>& texts, int64_t vocab_size, const std::string& out_path,
                         uint64_t seed, const std::vector<std::string>& pieces) {
  (void)seed;  // BPE training is deterministic for fixed input; kept for the cache key
  std::vector<std::string> lines;
  for (const auto& t : texts) {
    size_t s = 0;
    while (s <= t.size()) {
      size_t e = t.find('\n', s);
      if (e == std::string::npos) e = t.size();
      if (e > s) lines.push_back(t.substr(s, e - s));
      s = e + 1;
    }
  }
  if (lines.empty()) fail(out_path, "no text to train the tokenizer on");
  std::unordered_map<std::string, std::string> kw = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"remove_extra_whitespaces", "false"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"character_coverage", "1.0"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"max_sentence_length", "8192"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
      {"model_prefix", ""},
  };
  std::string symbols;
  for (const auto& w : pieces) {
    if (w.empty() || w.find_first_of(", \t\n") != std::string::npos)
      fail(out_path, "tokenizer piece '" + w + "' is empty or has a comma or whitespace; generator bug");
    symbols += (symbols.empty() ? "" : ",") + w;
  }
  if (!symbols.empty()) kw["user_defined_symbols"] = symbols;
  VectorIterator it(std::move(lines));
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &proto);
  if (!st.ok()) fail(out_path, "sentencepiece training failed: " + st.ToString());
  write_file_atomic(out_path, proto);
}

}  // namespace bm::train
