// Routed variants (Routing, 1bit-Merging) held in memory, so that switching
// the route rebuilds the model's weights in place from what is already on the
// device instead of re-reading and re-merging checkpoints from disk.
//
// What the bank holds per tensor: the base in its stored dtype, and per expert
// either the packed 1-bit delta (tensors its position compresses: numel/8
// bytes + an fp16 alpha) or the expert's stored tensor (dense positions,
// embeddings, norms; the delta is formed in fp32 when a route is built, the
// same way the Merger forms it). materialize() runs the method's own per-tensor
// merge (registry.hpp) on those inputs, so its result equals Merger::tensor()
// for the same spec and route (tested on CPU: bitwise).
//
// 7B paper setting (chat=mlp, math/code=attention) in bf16: base 13.5 GB +
// dense parts ~23 GB + packed ~0.3 GB. Where that does not fit next to the KV
// cache (13B), place = "host" keeps the inputs in pinned host memory and
// uploads each tensor's inputs when a route is built.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "merging/api.hpp"

namespace bm::merging {

class RoutedBank {
 public:
  // spec.method must be routing or onebit; spec.route is ignored; spec.device
  // is where the merge math runs. place: "device" (inputs on spec.device) or
  // "host" (inputs in pinned host memory when spec.device is cuda).
  explicit RoutedBank(const MergeSpec& spec, const std::string& place = "device");
  ~RoutedBank();
  const std::vector<std::string>& names() const;  // tensor names, base order
  const std::vector<std::string>& experts() const;
  const ModelConfig& config() const;
  std::string tokenizer_dir() const;
  std::vector<std::string> notes() const;
  int64_t bytes() const;  // bytes of the held inputs
  // Route `expert`: writes every merged tensor into weights[name] (copy_ into
  // the existing tensor, which keeps its device, dtype and storage: CUDA graphs
  // and views of it stay valid). Every name must be present with its shape.
  void materialize(const std::string& expert, std::map<std::string, torch::Tensor>& weights) const;
  // The merged tensor `name` for route `expert` (fp32, on the compute device).
  torch::Tensor tensor(const std::string& expert, const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Estimated bytes a bank for `spec` would hold (from headers only), to choose
// place = "device" or "host" against free GPU memory.
int64_t routed_bank_bytes(const MergeSpec& spec);

}  // namespace bm::merging
