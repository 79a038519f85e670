// Library entry points for merges (the CLI and the runner call these).
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "merging/registry.hpp"

namespace bm::merging {

struct ExpertSpec {
  std::string name;
  std::string path;  // HF model dir, or a packed task-vector file from `bitmerge compress`
  std::optional<Compression> compress;  // compress a full expert on the fly (position[:scheme], harness/models/arch.hpp)
};

struct MergeSpec {
  std::string method;
  std::string base;
  std::vector<ExpertSpec> experts;
  std::map<std::string, std::string> params;  // "key" or "<expert>.key" -> value
  std::string route;                          // routing / onebit
  std::string device = "cpu";                 // cpu | cuda
  std::string output;                         // merge_models only
  uint64_t max_shard_bytes = 5ull << 30;
};

// Reads a merge.toml (see docs in cmd_merge.cpp / merging/README.md); keys:
// method, base, output, route, device, [experts] name = "DIR" or
// { path = "DIR", compress = "mlp" } (or "mlp:ternary=0.1"), [params] key = value,
// [params.<expert>] key = value, [compress] name = "position[:scheme]".
MergeSpec load_merge_config(const std::string& toml_path);
// "name=DIR,name=DIR" -> experts; "name=position[:scheme[=density]],..." -> compress map.
std::vector<ExpertSpec> parse_experts_arg(const std::string& s);
void apply_compress_arg(MergeSpec& spec, const std::string& s);
// "key=value" -> params (throws on missing '=').
void apply_param_arg(MergeSpec& spec, const std::string& kv);

// Paper's compression position for an expert name (chat=mlp, math=attention,
// code=attention); nullopt for other names.
std::optional<Position> paper_position(const std::string& expert_name);

// An opened, validated merge: compatibility and parameters are checked in the
// constructor, before any weight is read. tensor() merges one tensor.
class Merger {
 public:
  explicit Merger(const MergeSpec& spec);
  ~Merger();
  const MergeSpec& spec() const;
  const std::vector<std::string>& names() const;  // output tensor names, in order
  std::vector<std::pair<DType, std::vector<int64_t>>> infos() const;
  const ModelConfig& config() const;
  std::string tokenizer_dir() const;
  // The merged tensor (CPU, the base's dtype).
  torch::Tensor tensor(const std::string& name);
  // Re-route (routing / onebit) without reopening the inputs.
  void set_route(const std::string& expert);
  std::vector<std::string> notes() const;  // vocab mismatches, defaults applied
  std::string provenance_json() const;
  const Params& params() const;
  // For a writer that consumes each tensor before asking for the next, in
  // names() order (merge_models): on cuda a thread starts computing from the
  // first tensor at once and stays up to two ahead; results come back in
  // reused pinned host memory. Out-of-order requests restart it there.
  void set_streaming_output(bool on);
  // cuda: one line of where the time went (input waits, GPU math + copy
  // back, time between tensor() calls = the caller's writing, upload
  // counters); empty on cpu.
  std::string profile_line() const;
  // DARE: masks drawn ahead on worker threads and used (0 when off: BITMERGE_DARE_AHEAD=0, or not DARE).
  int64_t drop_masks_served() const;
  // The opened inputs (merging/routed_bank.cpp holds them in memory).
  const Checkpoint& base_checkpoint() const;
  const std::vector<std::unique_ptr<ExpertSource>>& expert_sources() const;
  const MethodInfo& method() const;

 private:
  torch::Tensor tensor_chunked(const std::string& name, int64_t step_rows);
  // --device cuda: whole tensors on the GPU, inputs uploaded ahead
  // (merging/gpu_feed.hpp); when streaming, computed by a thread one or two
  // tensors ahead of the caller.
  torch::Tensor tensor_device(const std::string& name);
  torch::Tensor compute_device(const std::string& name);
  void stop_ahead();
  void start_ahead(size_t index);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the merged HF model dir to spec.output, streaming tensor by tensor.
// Returns the notes (also logged and stored in the provenance record).
std::vector<std::string> merge_models(const MergeSpec& spec);

// The merged tensors in memory (for routed variants evaluated without a dir).
std::map<std::string, torch::Tensor> merge_in_memory(const MergeSpec& spec);

}  // namespace bm::merging
