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

// Compression schemes of the task-vector matrices at a position
// (merging/task_vector.cpp computes them; CONTRIBUTING.md "Add a compression scheme"):
//   sign     the paper's alpha * sign(delta), alpha = mean|delta|: 1 bit per entry + fp16 alpha
//   ternary  top-k sign in the style of ComPEFT: the `density` fraction of largest |delta|
//            as alpha * sign(delta), 0 elsewhere, alpha = mean |delta| of the kept nonzero
//            entries: 2-bit codes per entry + fp16 alpha
//   bitdelta BitDelta (Liu et al. 2024): alpha * sign(delta) with alpha fitted per matrix to the
//            expert's logits on calibration text (harness/train/bitdelta.hpp, `bitmerge compress
//            --calib`); stored as sign: 1 bit per entry + fp16 alpha. Only packed files carry it.
enum class Scheme { Sign, Ternary, BitDelta };
struct Compression {
  Position position = Position::None;
  Scheme scheme = Scheme::Sign;
  double density = 0.1;  // ternary: fraction of each matrix's entries kept
  Compression() = default;
  Compression(Position p) : position(p) {}  // NOLINT: a position alone is the paper's 1-bit scheme
  bool operator==(const Compression& o) const {
    return position == o.position && scheme == o.scheme && (scheme != Scheme::Ternary || density == o.density);
  }
  bool operator!=(const Compression& o) const { return !(*this == o); }
};
// "attention" (1-bit sign), "attention:sign", "mlp:ternary" (density 0.1), "mlp:ternary=0.2":
// position[:scheme[=density]]. Throws naming `where` with the accepted forms.
Compression parse_compression(const std::string& s, const std::string& where);
std::string compression_name(const Compression& c);  // parse_compression's inverse ("mlp:ternary=0.2")
const char* scheme_name(Scheme s);                   // "sign" | "ternary" | "bitdelta"
std::vector<std::string> scheme_names();
// Storage of one compressed matrix of `numel` entries: sign and bitdelta ceil(numel/8) + 2
// bytes, ternary ceil(numel/4) + 2 bytes (codes 2 bits each, fp16 alpha).
uint64_t compressed_matrix_bytes(const Compression& c, int64_t numel);

}  // namespace bm
