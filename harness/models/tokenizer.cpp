#include "harness/models/tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

#include <map>
#include <set>

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
    // Ids above the SentencePiece model that added_tokens.json names (MAmmoTH's
    // [PAD] = 32000, a row a 32001-row model can generate): special ones decode
    // to nothing, as lm-eval's tok_decode(skip_special_tokens=True); others to
    // their text between the decoded runs around them.
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      std::string part;
      auto st = sp_.Decode(run, &part);
      if (!st.ok()) fail(path_, "decode failed: " + st.ToString());
      out += part;
      run.clear();
    };
    for (int64_t id : ids) {
      auto it = id >= sp_.GetPieceSize() ? added_.find(id) : added_.end();
      if (it == added_.end()) {
        run.push_back(static_cast<int>(id));
      } else if (!it->second.second) {
        flush();
        out += it->second.first;
      }
    }
    flush();
    return out;
  }
  // content -> id of added_tokens.json; `special`: contents of special_tokens_map.json.
  void set_added(const std::map<std::string, int64_t>& added, const std::set<std::string>& special) {
    for (auto& [content, id] : added) added_[id] = {content, special.count(content) != 0};
  }
  int64_t bos_id() const override { return sp_.bos_id(); }
  int64_t eos_id() const override { return sp_.eos_id(); }
  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::string piece(int64_t id) const override { return sp_.IdToPiece(static_cast<int>(id)); }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor sp_;
  std::map<int64_t, std::pair<std::string, bool>> added_;  // id -> (content, special)
};

// {"[PAD]": 32000} of added_tokens.json; the special tokens' contents of
// special_tokens_map.json (strings or {"content": ...}).
void read_added_tokens(const std::string& dir, std::map<std::string, int64_t>* added, std::set<std::string>* special) {
  using json = nlohmann::json;
  auto parse = [](const std::string& p) {
    try {
      return json::parse(read_text_file(p));
    } catch (const json::exception& e) {
      fail(p, std::string("not valid JSON (") + e.what() + "); re-download it");
    }
  };
  const std::string ap = dir + "/added_tokens.json", sp = dir + "/special_tokens_map.json";
  if (file_exists(ap)) {
    json j = parse(ap);
    if (!j.is_object()) fail(ap, "is not an object of token -> id; re-download it");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it->is_number_integer()) fail(ap, "token '" + it.key() + "' has no integer id; re-download it");
      (*added)[it.key()] = it->get<int64_t>();
    }
  }
  if (file_exists(sp)) {
    json j = parse(sp);
    if (j.is_object())
      for (auto& v : j) {
        if (v.is_string()) special->insert(v.get<std::string>());
        if (v.is_object() && v.contains("content") && v["content"].is_string()) special->insert(v["content"].get<std::string>());
      }
  }
}

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  return std::make_shared<SentencePieceTokenizer>(path);
}

std::shared_ptr<Tokenizer> Tokenizer::load_from_model_dir(const std::string& dir) {
  auto tok = std::make_shared<SentencePieceTokenizer>(dir + "/tokenizer.model");
  std::map<std::string, int64_t> added;
  std::set<std::string> special;
  read_added_tokens(dir, &added, &special);
  if (!added.empty()) tok->set_added(added, special);
  return tok;
}

const std::string& Tokenizer::probe_text() {
  static const std::string t =
      "The following are multiple choice questions (with answers) about high school mathematics.\n\n"
      "Question: Janet's ducks lay 16 eggs per day; 3 + 4 = 7.\nAnswer: def f(x):\n\treturn x ** 2 # \u00e9t\u00e9 \u4e2d\u6587 [/INST]";
  return t;
}

namespace {
// tokenizer.json (HF tokenizers) against a SentencePiece model: the same id for
// every piece of the model's vocabulary (model.vocab; added_tokens below the
// model's size name the same piece), and for the pieces of the probe text's
// SentencePiece encoding. Ids the json adds above the model's size ([PAD] =
// 32000) are extra rows the base tokenizer never produces.
void check_vocab_matches(const std::string& json_path, const Tokenizer& base, const std::string& base_path) {
  using json = nlohmann::json;
  json j;
  try {
    j = json::parse(read_text_file(json_path));
  } catch (const json::exception& e) {
    fail(json_path, std::string("not valid JSON (") + e.what() + "); re-download it");
  }
  const std::string fix = "; this expert's tokenizer differs from the family base's " + base_path +
                          ": its token ids would not mean the same, so it cannot be merged with this base";
  if (!j.contains("model") || !j["model"].is_object() || !j["model"].contains("vocab") ||
      !j["model"]["vocab"].is_object())
    fail(json_path, "has no model.vocab object (not a BPE/SentencePiece tokenizer.json)" + fix);
  std::map<int64_t, std::string> by_id;
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it)
    if (it->is_number_integer()) by_id[it->get<int64_t>()] = it.key();
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (auto& a : j["added_tokens"])
      if (a.contains("id") && a.contains("content") && a["id"].is_number_integer() && a["content"].is_string())
        by_id[a["id"].get<int64_t>()] = a["content"].get<std::string>();
  const int64_t n = base.vocab_size();
  for (int64_t id = 0; id < n; ++id) {
    auto it = by_id.find(id);
    if (it == by_id.end())
      fail(json_path, "has no token with id " + std::to_string(id) + " (the base has '" + base.piece(id) + "')" + fix);
    if (it->second != base.piece(id))
      fail(json_path, "id " + std::to_string(id) + " is '" + it->second + "' but '" + base.piece(id) + "' in the base" + fix);
  }
  std::map<std::string, int64_t> by_piece;
  for (auto& [id, p] : by_id) by_piece.emplace(p, id);
  for (int64_t id : base.encode(Tokenizer::probe_text(), false)) {
    auto it = by_piece.find(base.piece(id));
    if (it == by_piece.end() || it->second != id)
      fail(json_path, "the probe text's token '" + base.piece(id) + "' (id " + std::to_string(id) + " in the base) is " +
                          (it == by_piece.end() ? std::string("missing") : "id " + std::to_string(it->second)) + fix);
  }
}
}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load_for_model_dir(const std::string& dir, const std::string& fallback_dir,
                                                         std::string* note) {
  if (file_exists(dir + "/tokenizer.model")) {
    if (note) *note = dir + "/tokenizer.model";
    return load_from_model_dir(dir);
  }
  const std::string js = dir + "/tokenizer.json", fb = fallback_dir + "/tokenizer.model";
  if (fallback_dir.empty() || !file_exists(js) || !file_exists(fb)) return nullptr;
  auto tok = load(fb);
  check_vocab_matches(js, *tok, fb);
  if (note)
    *note = fb + " (" + dir + " ships tokenizer.json only; the family base's tokenizer.model is used: same id for all " +
            std::to_string(tok->vocab_size()) + " pieces and on the probe text)";
  return tok;
}

}  // namespace bm
