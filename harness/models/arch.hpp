// Architecture table: each checkpoint tensor name -> its role. Merging and
// compression need only this table; the forward uses the same names.
#pragma once
#include <string>
#include <vector>

namespace bm {

enum class Role { Embed, AttnQ, AttnK, AttnV, AttnO, MlpGate, MlpUp, MlpDown, Norm, Head, Other };

struct TensorRole {
  Role role = Role::Other;
  int layer = -1;  // -1 for embed, final norm, head
};

const char* role_name(Role r);  // "embed", "attn_q", ..., "mlp_down", "norm", "head", "other"
TensorRole classify_tensor(const std::string& name);  // LLaMA / Mistral HF names
bool is_attention(Role r);
bool is_mlp(Role r);
bool is_linear(Role r);  // attention or mlp projection: the only compressible tensors

// HF tensor names for a model with `layers` layers (and lm_head unless tied).
std::vector<std::string> llama_tensor_names(int layers, bool tie_word_embeddings);

// Compression positions of the paper.
enum class Position { None, Attention, Mlp, Linear };
Position parse_position(const std::string& s, const std::string& where);  // throws with a hint
const char* position_name(Position p);
bool position_covers(Position p, Role r);  // is a tensor of role r compressed at p?

}  // namespace bm
