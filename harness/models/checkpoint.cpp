// Checkpoint: dispatch on what a model directory holds, the safetensors
// backend (zero-copy views over mmap), fingerprints and config validation.
// The .bin backend is pickle_bin.cpp, the LoRA fold lora.cpp.
#include "harness/models/checkpoint.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/strings.hpp"
#include "harness/models/fingerprint.hpp"
#include "harness/models/shapes.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/lora.hpp"
#include "harness/models/pickle_bin.hpp"

namespace bm {
using json = nlohmann::json;

torch::Dtype to_torch_dtype(DType d) {
  switch (d) {
    case DType::F64: return torch::kFloat64;
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  return torch::kFloat32;
}

DType from_torch_dtype(torch::Dtype d) {
  switch (d) {
    case torch::kFloat64: return DType::F64;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kInt16: return DType::I16;
    case torch::kInt8: return DType::I8;
    case torch::kUInt8: return DType::U8;
    case torch::kBool: return DType::BOOL;
    default: break;
  }
  throw Error(std::string("tensor dtype ") + c10::toString(d) +
              ": not storable in safetensors by bitmerge (use float32, float16 or bfloat16)");
}

// ---------------------------------------------------------------- base
const ModelConfig& Checkpoint::config() const {
  if (!has_config_) fail(dir_ + "/config.json", "missing; a model directory needs the config.json of its checkpoint");
  return config_;
}

bool Checkpoint::has(const std::string& name) const { return name_index_.count(name) != 0; }

void Checkpoint::add_name(const std::string& name) {
  if (name_index_.count(name)) fail(dir_, "tensor '" + name + "' appears twice; remove the duplicate shard or entry");
  name_index_[name] = names_.size();
  names_.push_back(name);
}

void Checkpoint::read_config_if_present() {
  std::string p = dir_ + "/config.json";
  if (file_exists(p)) {
    config_ = ModelConfig::from_file(p);
    has_config_ = true;
  }
}

uint64_t Checkpoint::tensor_bytes() const {
  uint64_t n = 0;
  for (auto& name : names_) n += info(name).nbytes;
  return n;
}

std::string Checkpoint::fingerprint() const {
  if (fingerprint_.empty()) fingerprint_ = model_fingerprint(dir_);
  return fingerprint_;
}

bool Checkpoint::expected_shape(const ModelConfig& c, const std::string& name, std::vector<int64_t>* shape) {
  TensorRole r = classify_tensor(name);
  if (r.role == Role::Other) return false;
  *shape = role_shape(c, r.role);
  return true;
}

void Checkpoint::validate_against_config() const {
  const ModelConfig& c = config();
  const std::string cfg = dir_ + "/config.json";
  const std::string fix = "; the weights and config.json come from different models: use the config.json shipped with these weights";
  for (auto& name : names_) {
    TensorRole r = classify_tensor(name);
    if (r.layer >= c.num_hidden_layers)
      fail(dir_, "tensor '" + name + "' is in layer " + std::to_string(r.layer) + " but " + cfg + " has num_hidden_layers " +
                     std::to_string(c.num_hidden_layers) + fix);
    std::vector<int64_t> want;
    if (!expected_shape(c, name, &want)) continue;
    TensorInfo ti = info(name);
    if (ti.shape != want)
      fail(dir_, "tensor '" + name + "' has shape " + shape_str(ti.shape) + " but " + cfg + " implies " + shape_str(want) + fix);
  }
  for (auto& name : llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings))
    if (!has(name))
      fail(dir_, "tensor '" + name + "' required by " + cfg + " is missing" + did_you_mean(name, names_) +
                     "; the checkpoint is incomplete (missing shard?) or its config.json is wrong");
}

// ---------------------------------------------------------------- safetensors
namespace {

class SafetensorsCheckpoint : public Checkpoint {
 public:
  // `files`: shard paths in order; `weight_map` (sharded only): name -> file
  // index. Without a map every tensor of every file is taken.
  SafetensorsCheckpoint(const std::string& dir, bool with_config, const std::vector<std::string>& files,
                        const std::map<std::string, size_t>* weight_map, const std::string& index_path) {
    dir_ = dir;
    if (with_config) read_config_if_present();
    for (auto& f : files) files_.push_back(std::make_shared<SafetensorsFile>(f));
    for (size_t fi = 0; fi < files_.size(); ++fi) {
      std::vector<const TensorInfo*> ts;
      for (auto& t : files_[fi]->tensors()) ts.push_back(&t);
      std::sort(ts.begin(), ts.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
      for (auto* t : ts) {
        if (weight_map) {
          auto it = weight_map->find(t->name);
          if (it == weight_map->end() || it->second != fi) continue;  // not this shard's per the index
        }
        add_name(t->name);
        loc_.push_back({fi, t});
      }
    }
    if (weight_map)
      for (auto& [name, fi] : *weight_map)
        if (!has(name))
          fail(index_path, "names tensor '" + name + "' in " + files[fi] +
                               " but that file does not hold it; re-download the shard or fix the index");
  }

  TensorInfo info(const std::string& name) const override { return *loc_[index_of(name)].info; }

  torch::Tensor get(const std::string& name) const override {
    const Loc& l = loc_[index_of(name)];
    const TensorInfo& t = *l.info;
    auto opts = torch::TensorOptions().dtype(to_torch_dtype(t.dtype));
    const auto& file = files_[l.file];
    const uint8_t* p = file->data(t);
    if (t.nbytes == 0) return torch::empty(t.shape, opts);
    if (reinterpret_cast<uintptr_t>(p) % dtype_size(t.dtype) != 0) {
      // Misaligned (the header length is not a multiple of 8): copy once.
      torch::Tensor out = torch::empty(t.shape, opts);
      std::memcpy(out.data_ptr(), p, t.nbytes);
      return out;
    }
    std::shared_ptr<const MappedFile> keep = file->mapping();
    return torch::from_blob(const_cast<uint8_t*>(p), t.shape, [keep](void*) {}, opts);
  }

  std::vector<std::string> files() const override {
    std::vector<std::string> out;
    for (auto& f : files_) out.push_back(f->path());
    return out;
  }

 private:
  struct Loc {
    size_t file;
    const TensorInfo* info;
  };
  size_t index_of(const std::string& name) const {
    auto it = name_index_.find(name);
    if (it == name_index_.end()) fail(dir_, "no tensor named '" + name + "'" + did_you_mean(name, names_));
    return it->second;
  }
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::vector<Loc> loc_;
};

// Reads an HF index (model.safetensors.index.json / pytorch_model.bin.index.json):
// the shard files in sorted order and name -> position in that list.
void read_index(const std::string& dir, const std::string& index_path, std::vector<std::string>* files,
                std::map<std::string, size_t>* weight_map) {
  json j;
  // JSON keeps the last of two equal keys; an index naming a tensor twice is
  // ambiguous (which shard holds it?), so it is refused.
  std::string top_key, dup;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && parsed.is_string()) {
      if (depth == 1) top_key = parsed.get<std::string>();
      if (depth == 2 && top_key == "weight_map" && !seen.insert(parsed.get<std::string>()).second && dup.empty())
        dup = parsed.get<std::string>();
    }
    return true;
  };
  try {
    j = json::parse(read_text_file(index_path), cb);
  } catch (const json::exception& e) {
    fail(index_path, std::string("not valid JSON (") + e.what() + "); re-download it");
  }
  if (!dup.empty())
    fail(index_path, "weight_map names tensor '" + dup + "' twice; re-download the index (each tensor is in one shard)");
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index_path, "has no \"weight_map\" object; re-download the index or the checkpoint");
  std::set<std::string> shard_names;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it->is_string()) fail(index_path, "weight_map['" + it.key() + "'] is not a file name; re-download the index");
    std::string f = it->get<std::string>();
    if (f.find('/') != std::string::npos || f == "..")
      fail(index_path, "weight_map['" + it.key() + "'] names '" + f + "', outside the model directory; fix the index");
    shard_names.insert(f);
  }
  if (shard_names.empty()) fail(index_path, "weight_map is empty; re-download the index");
  std::map<std::string, size_t> pos;
  for (auto& f : shard_names) {
    std::string p = dir + "/" + f;
    if (!file_exists(p))
      fail(p, "missing shard named by " + index_path + "; download every shard listed in the index (or re-run the fetch)");
    pos[f] = files->size();
    files->push_back(p);
  }
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
    (*weight_map)[it.key()] = pos[it->get<std::string>()];
}

}  // namespace

std::shared_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  if (!file_exists(path)) fail(path, "no such model directory or file; check the path (or fetch the checkpoint first)");
  if (!is_directory(path)) {
    if (ends_with(path, ".safetensors"))
      return std::make_shared<SafetensorsCheckpoint>(path, false, std::vector<std::string>{path}, nullptr, "");
    if (ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth"))
      return open_bin_checkpoint(path, {path}, false);
    fail(path, "is a file but neither .safetensors nor .bin; pass the model directory instead");
  }
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  auto in = [&](const char* f) { return dir + "/" + f; };
  if (file_exists(in("model.safetensors.index.json"))) {
    std::vector<std::string> files;
    std::map<std::string, size_t> wm;
    read_index(dir, in("model.safetensors.index.json"), &files, &wm);
    return std::make_shared<SafetensorsCheckpoint>(dir, true, files, &wm, in("model.safetensors.index.json"));
  }
  if (file_exists(in("model.safetensors")))
    return std::make_shared<SafetensorsCheckpoint>(dir, true, std::vector<std::string>{in("model.safetensors")}, nullptr, "");
  if (file_exists(in("pytorch_model.bin.index.json"))) {
    std::vector<std::string> files;
    std::map<std::string, size_t> wm;
    read_index(dir, in("pytorch_model.bin.index.json"), &files, &wm);
    auto ck = open_bin_checkpoint(dir, files, true);
    for (auto& [name, fi] : wm)
      if (!ck->has(name) && name.find("rotary_emb.inv_freq") == std::string::npos)
        fail(in("pytorch_model.bin.index.json"), "names tensor '" + name + "' in " + files[fi] +
                                                   " but that file does not hold it; re-download the shard or fix the index");
    return ck;
  }
  if (file_exists(in("pytorch_model.bin"))) return open_bin_checkpoint(dir, {in("pytorch_model.bin")}, true);
  if (file_exists(in("adapter_config.json"))) {
    std::string base = lora_base_model_path(dir);
    if (!base.empty() && is_directory(base)) return open_lora(dir, base);
    fail(in("adapter_config.json"), "this is a PEFT LoRA adapter whose base_model_name_or_path '" + base +
                                        "' is not a local directory; download the base model and open the adapter "
                                        "with its base (e.g. a family TOML's base= / Checkpoint::open_lora)");
  }
  std::vector<std::string> st;
  for (auto& n : list_dir(dir))
    if (ends_with(n, ".safetensors") && !is_directory(dir + "/" + n)) st.push_back(dir + "/" + n);
  if (!st.empty()) return std::make_shared<SafetensorsCheckpoint>(dir, true, st, nullptr, "");
  fail(dir, "no model weights found (looked for model.safetensors[.index.json], pytorch_model.bin[.index.json], "
            "*.safetensors, adapter_config.json); download the checkpoint's weight files into it");
}

std::vector<std::string> checkpoint_decisions(const std::string& dir, const std::string& base_dir) {
  std::vector<std::string> out;
  auto in = [&](const std::string& f) { return dir + "/" + f; };
  auto read_json = [](const std::string& p) {
    try {
      return json::parse(read_text_file(p));
    } catch (const json::exception& e) {
      fail(p, std::string("not valid JSON (") + e.what() + "); re-download it");
    }
  };
  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool adapter = file_exists(in("adapter_config.json")) && !file_exists(in("config.json"));
  if (adapter) {
    out.push_back("PEFT LoRA adapter (adapter_config.json): folded into the base, W + scale * B @ A per targeted weight");
    return out;
  }
  if (lower.find("lora") != std::string::npos)
    out.push_back("full model despite 'lora' in its name (config.json, no adapter_config.json): read as a full checkpoint");
  auto ck = Checkpoint::open(dir);
  size_t n_st = 0, n_bin = 0;
  for (auto& f : list_dir(dir)) {
    if (ends_with(f, ".safetensors")) ++n_st;
    if (ends_with(f, ".bin") && f.rfind("pytorch_model", 0) == 0) ++n_bin;
  }
  const bool reads_bin = !ck->files().empty() && ends_with(ck->files()[0], ".bin");
  if (reads_bin)
    out.push_back("weights: .bin only (" + std::to_string(ck->files().size()) +
                  " shards): each shard memory-mapped, tensors read one at a time (never all shards in RAM)");
  else if (n_bin)
    out.push_back("weights: the " + std::to_string(ck->files().size()) + " safetensors files are read; the " +
                  std::to_string(n_bin) + " .bin copies are ignored");
  std::map<std::string, int> dtypes;
  for (auto& n : ck->names()) {
    DType d = ck->info(n).dtype;
    ++dtypes[d == DType::F32 ? "float32" : d == DType::F16 ? "float16" : d == DType::BF16 ? "bfloat16" : dtype_name(d)];
  }
  std::string dt;
  for (auto& [d, c] : dtypes) dt += (dt.empty() ? "" : ", ") + d + " x " + std::to_string(c);
  out.push_back("stored dtypes: " + dt + (dtypes.size() > 1 ? " (mixed: every tensor converted to float32 for task vectors)" : ""));
  if (reads_bin && file_exists(in("pytorch_model.bin.index.json"))) {
    json j = read_json(in("pytorch_model.bin.index.json"));
    int buffers = 0;
    if (j.contains("weight_map") && j["weight_map"].is_object())
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
        if (!ck->has(it.key())) ++buffers;
    if (buffers)
      out.push_back("non-parameter buffers ignored: " + std::to_string(buffers) +
                    " pickled rotary_emb.inv_freq (derived from config.json, never weights)");
  }
  if (!base_dir.empty() && ck->has_config() && file_exists(base_dir + "/config.json")) {
    const int64_t v = ck->config().vocab_size, bv = ModelConfig::from_file(base_dir + "/config.json").vocab_size;
    if (v != bv) {
      std::string extra;
      if (file_exists(in("added_tokens.json"))) {
        json a = read_json(in("added_tokens.json"));
        if (a.is_object())
          for (auto it = a.begin(); it != a.end(); ++it)
            if (it->is_number_integer() && it->get<int64_t>() >= std::min(v, bv))
              extra += (extra.empty() ? "" : ", ") + it.key() + " = " + std::to_string(it->get<int64_t>());
      }
      if (v > bv)
        out.push_back("vocab " + std::to_string(v) + " vs the base's " + std::to_string(bv) +
                      (extra.empty() ? "" : " (added_tokens.json: " + extra + ")") + ": merges use the " +
                      std::to_string(bv) + " common rows of embed_tokens and lm_head; rows " + std::to_string(bv) +
                      ".." + std::to_string(v - 1) +
                      " are dropped, so merged models have the base's rows and tokenizer; evaluated alone (or routed "
                      "to) the expert keeps its own rows and tokenizer, an added special token generated decodes to "
                      "nothing (lm-eval's skip_special_tokens)");
      else
        out.push_back("vocab " + std::to_string(v) + " vs the base's " + std::to_string(bv) + ": merges use the " +
                      std::to_string(v) + " common rows; the base's other rows are kept as they are");
    }
  }
  if (!file_exists(in("tokenizer.model")) && file_exists(in("tokenizer.json")))
    out.push_back("tokenizer.json only: " +
                  (base_dir.empty() ? std::string("no tokenizer.model, text requests need one")
                                    : "the base's tokenizer.model is used (" + base_dir +
                                          "), after checking every piece and a probe text get the same ids"));
  if (file_exists(in("generation_config.json"))) {
    json g = read_json(in("generation_config.json"));
    std::string s;
    for (const char* k : {"do_sample", "temperature", "top_p", "top_k", "max_length", "max_new_tokens"})
      if (g.is_object() && g.contains(k)) s += (s.empty() ? "" : ", ") + std::string(k) + "=" + g[k].dump();
    if (!s.empty())
      out.push_back("generation_config.json (" + s + ") ignored: generation is greedy with each task's own budget");
  }
  return out;
}

std::shared_ptr<Checkpoint> Checkpoint::open_lora(const std::string& adapter_dir, const std::string& base_dir) {
  return open_lora_checkpoint(adapter_dir, open(base_dir));
}

}  // namespace bm
