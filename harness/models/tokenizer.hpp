// SentencePiece tokenizer.model with HF's Llama conventions: BOS prepended
// on request, SentencePiece's dummy-prefix leading space, no EOS added.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bm {

class Tokenizer {
 public:
  static std::shared_ptr<Tokenizer> load(const std::string& tokenizer_model_path);
  // Finds tokenizer.model in a model directory; error names the path if missing.
  static std::shared_ptr<Tokenizer> load_from_model_dir(const std::string& dir);
  // The tokenizer of a model directory as a family uses it: <dir>/tokenizer.model;
  // else, for a repo that ships tokenizer.json only (mrm8488/llama-2-coder-7b),
  // <fallback_dir>/tokenizer.model (the family base's), after checking that the
  // tokenizer.json gives every piece of the base's vocabulary, and every token
  // of the base's encoding of a probe text, the same id (error naming both files
  // otherwise). nullptr when the directory has neither file or no fallback is
  // given. `note`, when set, says which file is used and why (for provenance).
  static std::shared_ptr<Tokenizer> load_for_model_dir(const std::string& dir, const std::string& fallback_dir,
                                                       std::string* note = nullptr);
  // The text check_vocab_matches encodes and compares id for id.
  static const std::string& probe_text();
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text, bool add_bos) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string piece(int64_t id) const = 0;
};

}  // namespace bm
