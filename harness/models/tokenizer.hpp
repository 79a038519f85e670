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
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text, bool add_bos) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string piece(int64_t id) const = 0;
};

}  // namespace bm
