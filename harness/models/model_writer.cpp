// write_model_dir: an HF-format model directory, streamed tensor by tensor
// into "<out>.tmp-<pid>" and renamed into place, so a killed run never leaves
// a half-written model under the final name.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"

namespace bm {

namespace {
// Files HF tokenizers (and generation defaults) load from a model directory.
const char* const kTokenizerFiles[] = {"tokenizer.model",    "tokenizer.json",          "tokenizer_config.json",
                                       "special_tokens_map.json", "added_tokens.json", "generation_config.json"};

bool rename_path(const std::string& from, const std::string& to, std::string* err) {
  if (std::rename(from.c_str(), to.c_str()) == 0) return true;
  *err = std::strerror(errno);
  return false;
}
}  // namespace

void write_model_dir(const std::string& out_dir_in, const ModelConfig& config, const std::vector<std::string>& names,
                     const std::vector<std::pair<DType, std::vector<int64_t>>>& infos,
                     const std::function<torch::Tensor(const std::string&)>& produce,
                     const std::string& tokenizer_source_dir, const ModelWriteOptions& opts) {
  std::string out_dir = out_dir_in;
  while (out_dir.size() > 1 && out_dir.back() == '/') out_dir.pop_back();
  if (names.size() != infos.size())
    fail(out_dir, std::to_string(names.size()) + " tensor names but " + std::to_string(infos.size()) +
                      " dtype/shape entries (internal error)");
  const std::string tmp = out_dir + ".tmp-" + std::to_string(::getpid());
  remove_tree(tmp);
  make_dirs(tmp);
  try {
    write_file_atomic(tmp + "/config.json", config.to_json_text());
    if (!tokenizer_source_dir.empty())
      for (const char* f : kTokenizerFiles) {
        std::string src = tokenizer_source_dir + "/" + f;
        if (file_exists(src)) write_file_atomic(tmp + "/" + f, read_text_file(src));
      }
    std::map<std::string, std::string> meta = opts.metadata;
    meta["format"] = "pt";  // transformers refuses safetensors without it
    ShardedSafetensorsWriter w(tmp, opts.max_shard_bytes, meta);
    for (size_t i = 0; i < names.size(); ++i) w.declare(names[i], infos[i].first, infos[i].second);
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& name = names[i];
      torch::Tensor t = produce(name);
      if (!t.defined()) fail(name, "the producer returned no tensor (internal error)");
      if (t.sizes().vec() != infos[i].second)
        fail(name, "produced shape " + shape_str(t.sizes().vec()) + " but declared " + shape_str(infos[i].second) +
                       " (internal error)");
      torch::Tensor c = t.to(torch::kCPU, to_torch_dtype(infos[i].first)).contiguous();
      w.write(name, c.data_ptr(), c.nbytes());
    }
    w.finish();
    if (!opts.provenance_json.empty()) write_file_atomic(tmp + "/bitmerge_provenance.json", opts.provenance_json);
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
  // Swap into place: an existing directory is moved aside first, then removed.
  std::string old;
  if (file_exists(out_dir)) {
    old = out_dir + ".old-" + std::to_string(::getpid());
    remove_tree(old);
    std::string err;
    if (!rename_path(out_dir, old, &err)) {
      remove_tree(tmp);
      fail(out_dir, "cannot replace the existing directory (" + err + "); remove it or choose another output");
    }
  }
  std::string err;
  if (!rename_path(tmp, out_dir, &err))
    fail(out_dir, "cannot rename " + tmp + " into place (" + err + "); the finished model is left in " + tmp);
  if (!old.empty()) remove_tree(old);
}

}  // namespace bm
