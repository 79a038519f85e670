// Storage accounting (torch-free, bm_merging_info): bytes per stored component and the ratio against
// Routing (3 full experts), for Routing, base + fp16 task vectors, 1bit-Merging
// per choice of compression positions, and a static merge. Computed from
// tensor shapes (from checkpoint headers or analytically from a config), and
// from files on disk where given.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/core/safetensors.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/model_config.hpp"
#include "harness/models/shapes.hpp"

namespace bm::merging {

using bm::TensorShape;  // harness/models/shapes.hpp

// LLaMA-2 7B / 13B and Mistral 7B sizes (config.json values), no weights needed.
ModelConfig family_preset(const std::string& name);  // "llama2-7b" | "llama2-13b" | "mistral-7b"
std::vector<std::string> family_presets();
std::vector<TensorShape> tensors_from_config(const ModelConfig& c);

// Bytes of one task-vector tensor: compressed_matrix_bytes (1-bit sign:
// ceil(numel/8) + 2 bytes fp16 alpha; ternary: ceil(numel/4) + 2) when its
// position covers it, else numel * value_bytes.
uint64_t tensor_bytes(const TensorShape& t, const Compression& c, int value_bytes);
// Bytes of a task vector of these tensors under `c` (at Position::None: a whole
// model at value_bytes each): the sum of tensor_bytes. The one count of
// `bitmerge storage` and the grid's storage_bytes (harness/runner/storage.cpp).
uint64_t task_vector_bytes(const std::vector<TensorShape>& tensors, const Compression& c, int value_bytes);

struct StorageComponent {
  std::string name;    // "base", "expert chat", "task vector chat @ mlp", ...
  uint64_t bytes = 0;
  std::string source;  // "analytic" or a path (measured on disk)
};
struct StorageRow {
  std::string variant;  // "Routing", "base + fp16 task vectors", "1bit-Merging (chat=mlp, ...)", "static merge"
  std::string components;
  uint64_t bytes = 0;
  double ratio = 0;  // bytes / Routing bytes
};
struct StorageReport {
  std::string model;
  std::vector<StorageComponent> components;
  std::vector<StorageRow> rows;
  std::string to_markdown() const;
  std::string to_json() const;
};

struct StorageOptions {
  std::vector<std::string> experts{"chat", "math", "code"};
  int value_bytes = 2;  // fp16 / bf16
  // Position assignments to report (each a map expert -> position). Empty =
  // the paper's (chat=mlp, math/code=attention), chat=linear + others attention,
  // and all-attention / all-mlp / all-linear.
  std::vector<std::map<std::string, Compression>> assignments;
};

// Analytic (from shapes).
StorageReport storage_report(const std::string& model, const std::vector<TensorShape>& tensors,
                             const StorageOptions& opts);

// Measured components from files, added to a report: name -> bytes on disk.
void add_measured(StorageReport& r, const std::string& name, uint64_t bytes, const std::string& path);

}  // namespace bm::merging
