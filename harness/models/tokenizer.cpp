#include "harness/models/tokenizer.hpp"

#include <sentencepiece_processor.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path) {
    if (!file_exists(path))
      fail(path, "tokenizer.model not found; copy the model's SentencePiece tokenizer.model into its directory");
    auto st = sp_.Load(path);
    if (!st.ok()) fail(path, "not a readable SentencePiece model (" + st.ToString() + "); re-download tokenizer.model");
  }
  std::vector<int64_t> encode(const std::string& text, bool add_bos) const override {
    std::vector<int> ids;
    auto st = sp_.Encode(text, &ids);
    if (!st.ok()) fail(path_, "encode failed: " + st.ToString());
    std::vector<int64_t> out;
    out.reserve(ids.size() + 1);
    if (add_bos) out.push_back(bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> v(ids.begin(), ids.end());
    std::string out;
    auto st = sp_.Decode(v, &out);
    if (!st.ok()) fail(path_, "decode failed: " + st.ToString());
    return out;
  }
  int64_t bos_id() const override { return sp_.bos_id(); }
  int64_t eos_id() const override { return sp_.eos_id(); }
  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::string piece(int64_t id) const override { return sp_.IdToPiece(static_cast<int>(id)); }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  return std::make_shared<SentencePieceTokenizer>(path);
}

std::shared_ptr<Tokenizer> Tokenizer::load_from_model_dir(const std::string& dir) {
  return load(dir + "/tokenizer.model");
}

}  // namespace bm
