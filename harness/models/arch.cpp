#include "harness/models/arch.hpp"

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "harness/core/error.hpp"

namespace bm {

const char* role_name(Role r) {
  switch (r) {
    case Role::Embed: return "embed";
    case Role::AttnQ: return "attn_q";
    case Role::AttnK: return "attn_k";
    case Role::AttnV: return "attn_v";
    case Role::AttnO: return "attn_o";
    case Role::MlpGate: return "mlp_gate";
    case Role::MlpUp: return "mlp_up";
    case Role::MlpDown: return "mlp_down";
    case Role::Norm: return "norm";
    case Role::Head: return "head";
    case Role::Other: return "other";
  }
  return "other";
}

namespace {
struct Entry {
  const char* suffix;
  Role role;
};
// The whole LLaMA/Mistral table: "model.layers.{i}." + suffix.
const Entry kLayerTable[] = {
    {"self_attn.q_proj.weight", Role::AttnQ},   {"self_attn.k_proj.weight", Role::AttnK},
    {"self_attn.v_proj.weight", Role::AttnV},   {"self_attn.o_proj.weight", Role::AttnO},
    {"mlp.gate_proj.weight", Role::MlpGate},    {"mlp.up_proj.weight", Role::MlpUp},
    {"mlp.down_proj.weight", Role::MlpDown},    {"input_layernorm.weight", Role::Norm},
    {"post_attention_layernorm.weight", Role::Norm},
};
}  // namespace

TensorRole classify_tensor(const std::string& name) {
  if (name == "model.embed_tokens.weight") return {Role::Embed, -1};
  if (name == "lm_head.weight") return {Role::Head, -1};
  if (name == "model.norm.weight") return {Role::Norm, -1};
  static const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) == 0) {
    size_t dot = name.find('.', prefix.size());
    if (dot != std::string::npos) {
      int layer = -1;
      try {
        layer = std::stoi(name.substr(prefix.size(), dot - prefix.size()));
      } catch (...) {
        return {Role::Other, -1};
      }
      std::string rest = name.substr(dot + 1);
      for (const auto& e : kLayerTable)
        if (rest == e.suffix) return {e.role, layer};
      return {Role::Other, layer};
    }
  }
  return {Role::Other, -1};
}

bool is_attention(Role r) { return r == Role::AttnQ || r == Role::AttnK || r == Role::AttnV || r == Role::AttnO; }
bool is_mlp(Role r) { return r == Role::MlpGate || r == Role::MlpUp || r == Role::MlpDown; }
bool is_linear(Role r) { return is_attention(r) || is_mlp(r); }

std::vector<std::string> llama_tensor_names(int layers, bool tie) {
  std::vector<std::string> out{"model.embed_tokens.weight"};
  for (int i = 0; i < layers; ++i)
    for (const auto& e : kLayerTable) out.push_back("model.layers." + std::to_string(i) + "." + e.suffix);
  out.push_back("model.norm.weight");
  if (!tie) out.push_back("lm_head.weight");
  return out;
}

Position parse_position(const std::string& s, const std::string& where) {
  if (s == "none") return Position::None;
  if (s == "attention" || s == "attn") return Position::Attention;
  if (s == "mlp") return Position::Mlp;
  if (s == "linear" || s == "all") return Position::Linear;
  fail(where, "unknown compression position '" + s + "'" + did_you_mean(s, {"none", "attention", "mlp", "linear"}) +
                  "; use attention, mlp, linear or none");
}

const char* position_name(Position p) {
  switch (p) {
    case Position::None: return "none";
    case Position::Attention: return "attention";
    case Position::Mlp: return "mlp";
    case Position::Linear: return "linear";
  }
  return "none";
}

bool position_covers(Position p, Role r) {
  switch (p) {
    case Position::None: return false;
    case Position::Attention: return is_attention(r);
    case Position::Mlp: return is_mlp(r);
    case Position::Linear: return is_linear(r);
  }
  return false;
}

const char* scheme_name(Scheme s) {
  return s == Scheme::Ternary ? "ternary" : s == Scheme::BitDelta ? "bitdelta" : "sign";
}
std::vector<std::string> scheme_names() { return {"sign", "ternary", "bitdelta"}; }

Compression parse_compression(const std::string& s, const std::string& where) {
  auto colon = s.find(':');
  Compression c(parse_position(s.substr(0, colon), where));
  if (colon == std::string::npos) return c;
  std::string scheme = s.substr(colon + 1), value;
  auto eq = scheme.find('=');
  if (eq != std::string::npos) value = scheme.substr(eq + 1), scheme = scheme.substr(0, eq);
  const std::string forms =
      "; write POSITION, POSITION:sign, POSITION:ternary[=DENSITY] (e.g. attention:ternary=0.1) or POSITION:bitdelta";
  if (scheme == "sign" || scheme == "1bit" || scheme == "bitdelta") {
    if (eq != std::string::npos) fail(where, "scheme " + scheme + " takes no value ('" + s + "')" + forms);
    c.scheme = scheme == "bitdelta" ? Scheme::BitDelta : Scheme::Sign;
  } else if (scheme == "ternary") {
    c.scheme = Scheme::Ternary;
    if (eq != std::string::npos) {
      char* end = nullptr;
      c.density = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(c.density > 0.0 && c.density <= 1.0))
        fail(where, "ternary density '" + value + "' is not a number in (0, 1]" + forms);
    }
  } else {
    fail(where, "unknown compression scheme '" + scheme + "'" + did_you_mean(scheme, scheme_names()) + forms);
  }
  if (c.position == Position::None) fail(where, "'" + s + "' compresses nothing (position none); drop the scheme");
  return c;
}

std::string compression_name(const Compression& c) {
  std::string s = position_name(c.position);
  if (c.scheme == Scheme::Ternary) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", c.density);
    // Shortest form that reads back to the same double.
    for (int prec = 1; prec <= 17; ++prec) {
      std::snprintf(b, sizeof b, "%.*g", prec, c.density);
      if (std::strtod(b, nullptr) == c.density) break;
    }
    s += std::string(":ternary=") + b;
  }
  if (c.scheme == Scheme::BitDelta) s += ":bitdelta";
  return s;
}

uint64_t compressed_matrix_bytes(const Compression& c, int64_t numel) {
  const uint64_t n = static_cast<uint64_t>(numel);
  return (c.scheme == Scheme::Ternary ? (n + 3) / 4 : (n + 7) / 8) + 2;
}

}  // namespace bm
