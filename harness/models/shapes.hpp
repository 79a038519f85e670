// Sizes that a config.json implies, from the architecture table (arch.hpp's
// roles): each tensor's shape, the model's tensors, parameter counts by role
// group. Torch-free and one home for every size calculation: the checkpoint
// validator and the forward (shapes), `bitmerge storage` (tensors), the grid's
// storage_bytes and `inspect` (counts) all ask it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "harness/models/arch.hpp"
#include "harness/models/model_config.hpp"

namespace bm {

// config.json's head_dim, else hidden_size / num_attention_heads; num_key_value_heads, else the heads.
int64_t head_dim(const ModelConfig& c);
int64_t kv_heads(const ModelConfig& c);

// The shape of a tensor of role `r` ({} for Role::Other).
std::vector<int64_t> role_shape(const ModelConfig& c, Role r);

struct TensorShape {
  std::string name;
  std::vector<int64_t> shape;
};
// Every tensor of the model in HF order (llama_tensor_names), with its shape.
std::vector<TensorShape> model_tensors(const ModelConfig& c);

struct ParamCounts {
  int64_t embed = 0, head = 0, norm = 0;
  int64_t attn = 0, mlp = 0;            // all layers
  int64_t attn_mats = 0, mlp_mats = 0;  // number of matrices (one scale each when compressed)
  int64_t total() const { return embed + head + norm + attn + mlp; }
};
ParamCounts param_counts(const ModelConfig& c);

}  // namespace bm
