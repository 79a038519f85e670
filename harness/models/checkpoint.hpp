// A model directory as a set of named tensors, whatever its files:
// model.safetensors, sharded safetensors with an index, pytorch_model.bin
// (single or sharded), or a PEFT LoRA adapter folded into its base.
// safetensors tensors are zero-copy read-only views of memory-mapped files,
// so opening a 7B model costs no RAM until tensors are touched.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/core/safetensors.hpp"
#include "harness/models/model_config.hpp"

namespace bm {

torch::Dtype to_torch_dtype(DType d);
DType from_torch_dtype(torch::Dtype d);  // throws for unsupported

class Checkpoint {
 public:
  // Opens `dir`; config.json is read if present (required for models).
  // Looks, in order, for model.safetensors.index.json, model.safetensors,
  // pytorch_model.bin.index.json, pytorch_model.bin, then any *.safetensors.
  // A PEFT adapter dir (adapter_config.json) is folded into its
  // base_model_name_or_path when that is a local directory; else use open_lora.
  // `dir` may also name a single .safetensors or .bin file (no config).
  static std::shared_ptr<Checkpoint> open(const std::string& dir);
  // A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors|.bin)
  // folded into `base_dir`: every targeted weight becomes
  // W + (lora_alpha / r) * B @ A (alpha / sqrt(r) with use_rslora), computed in
  // float32 on get() and returned in W's dtype; other tensors are the base's.
  // config() is the base's config.
  static std::shared_ptr<Checkpoint> open_lora(const std::string& adapter_dir, const std::string& base_dir);
  virtual ~Checkpoint() = default;

  const std::string& dir() const { return dir_; }
  bool has_config() const { return has_config_; }
  const ModelConfig& config() const;  // throws naming config.json if absent

  const std::vector<std::string>& names() const { return names_; }  // stable, file order
  bool has(const std::string& name) const;
  // dtype/shape without reading data
  virtual TensorInfo info(const std::string& name) const = 0;
  // CPU tensor in the file's dtype. For safetensors a view on the mapping
  // (read-only mapping: writing into it faults; clone() first).
  virtual torch::Tensor get(const std::string& name) const = 0;
  // Which files hold the tensors (for storage accounting and fingerprints).
  virtual std::vector<std::string> files() const = 0;
  // Bytes of tensor data as stored on disk.
  uint64_t tensor_bytes() const;
  // Identity of the weights: the one model fingerprint (harness/models/fingerprint.hpp,
  // sha256 of the files in full, as results.json's) of dir(); a LoRA adapter's
  // also covers its base. Computed once per Checkpoint.
  virtual std::string fingerprint() const;
  // Checks every tensor against config.json's sizes (shape mismatch -> error
  // naming the tensor, the expected and the found shape).
  void validate_against_config() const;
  // The shape config.json implies for a LLaMA/Mistral tensor name; false when
  // the name is not one the architecture defines.
  static bool expected_shape(const ModelConfig& c, const std::string& name, std::vector<int64_t>* shape);

 protected:
  void add_name(const std::string& name);      // appends to names_ (throws on duplicates)
  void read_config_if_present();               // dir_/config.json
  std::string dir_;
  bool has_config_ = false;
  ModelConfig config_;
  std::vector<std::string> names_;
  std::map<std::string, size_t> name_index_;
  mutable std::string fingerprint_;
};

// The decision bitmerge takes for each quirk this checkpoint has, one line
// each, for results' provenance (docs/checkpoints.md lists them all): which
// weight files are read, stored dtypes, pickled buffers ignored, a vocab that
// differs from the base's, a tokenizer.json-only repo, sampling settings of
// generation_config.json, a full model whose name says "lora". `base_dir`: the
// family base ("" for the base itself). Reads headers and small JSON files only.
std::vector<std::string> checkpoint_decisions(const std::string& dir, const std::string& base_dir);

// Writes an HF-format model directory: config.json, tokenizer files copied
// from `tokenizer_source_dir`, sharded safetensors, and bitmerge_provenance.json.
// Tensors are produced one at a time by `produce(name)` in `names` order, so a
// merge streams tensor by tensor. Written into "<out>.tmp-<pid>" then renamed.
struct ModelWriteOptions {
  uint64_t max_shard_bytes = 5ull << 30;
  std::string provenance_json;  // written as bitmerge_provenance.json when non-empty
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
};
void write_model_dir(const std::string& out_dir, const ModelConfig& config, const std::vector<std::string>& names,
                     const std::vector<std::pair<DType, std::vector<int64_t>>>& infos,
                     const std::function<torch::Tensor(const std::string&)>& produce,
                     const std::string& tokenizer_source_dir, const ModelWriteOptions& opts = {});

}  // namespace bm
