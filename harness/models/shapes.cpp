#include "harness/models/shapes.hpp"

namespace bm {

int64_t head_dim(const ModelConfig& c) {
  return c.head_dim > 0 ? c.head_dim : (c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
}

int64_t kv_heads(const ModelConfig& c) { return c.num_key_value_heads > 0 ? c.num_key_value_heads : c.num_attention_heads; }

std::vector<int64_t> role_shape(const ModelConfig& c, Role r) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t hd = head_dim(c);
  const int64_t q = c.num_attention_heads * hd, kv = kv_heads(c) * hd;
  switch (r) {
    case Role::Embed: case Role::Head: return {V, H};
    case Role::Norm: return {H};
    case Role::AttnQ: return {q, H};
    case Role::AttnK: case Role::AttnV: return {kv, H};
    case Role::AttnO: return {H, q};
    case Role::MlpGate: case Role::MlpUp: return {I, H};
    case Role::MlpDown: return {H, I};
    case Role::Other: return {};
  }
  return {};
}

std::vector<TensorShape> model_tensors(const ModelConfig& c) {
  std::vector<TensorShape> out;
  for (auto& n : llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings)) {
    auto s = role_shape(c, classify_tensor(n).role);
    if (!s.empty()) out.push_back({n, s});
  }
  return out;
}

ParamCounts param_counts(const ModelConfig& c) {
  ParamCounts p;
  for (const auto& t : model_tensors(c)) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    const Role r = classify_tensor(t.name).role;
    if (r == Role::Embed) p.embed += n;
    else if (r == Role::Head) p.head += n;
    else if (r == Role::Norm) p.norm += n;
    else if (is_attention(r)) p.attn += n, ++p.attn_mats;
    else if (is_mlp(r)) p.mlp += n, ++p.mlp_mats;
  }
  return p;
}

}  // namespace bm
