// LLaMA / Mistral forward, matching HF transformers' modeling_llama /
// modeling_mistral (RMSNorm in fp32, rotate_half RoPE with fp32 cos/sin cast
// to the model dtype, GQA, SwiGLU). Differences by design:
//  - the sliding window is measured in token positions, not cache slots, so a
//    left-padded row gives the same result as the unpadded sequence (HF counts
//    pad slots inside the window); identical for unpadded input;
//  - a padded query row may always attend to itself, so pad rows never turn
//    into NaN (their outputs are ignored anyway).
#include "harness/models/transformer.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/shapes.hpp"
#include "kernels/decode.hpp"

namespace bm {
namespace {

std::string layer_name(int64_t i, const char* suffix) { return "model.layers." + std::to_string(i) + "." + suffix; }

// The shape config.json implies (the architecture table, harness/models/shapes.hpp).
std::vector<int64_t> expected_shape(const ModelConfig& c, const std::string& name) {
  return role_shape(c, classify_tensor(name).role);
}

std::string shape_of(const torch::Tensor& t) { return shape_str(std::vector<int64_t>(t.sizes().begin(), t.sizes().end())); }

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  auto h = x.to(torch::kFloat32);
  auto var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return w * h.to(x.scalar_type());
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return at::cat({-x2, x1}, -1);
}

}  // namespace

Transformer::Transformer(const ModelConfig& config, std::map<std::string, torch::Tensor> weights, torch::Device device,
                         torch::Dtype dtype)
    : config_(config), device_(device), dtype_(dtype) {
  if (config_.head_dim <= 0 && config_.num_attention_heads > 0)
    config_.head_dim = config_.hidden_size / config_.num_attention_heads;
  if (config_.num_key_value_heads <= 0) config_.num_key_value_heads = config_.num_attention_heads;
  if (config_.num_attention_heads % config_.num_key_value_heads != 0)
    fail("config.json", "num_attention_heads must be a multiple of num_key_value_heads; fix the config");
  auto names = llama_tensor_names(static_cast<int>(config_.num_hidden_layers), config_.tie_word_embeddings);
  for (const auto& name : names) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      std::vector<std::string> have;
      for (auto& kv : weights) have.push_back(kv.first);
      fail(name, "tensor missing from the model" + did_you_mean(name, have) +
                     "; check that the checkpoint matches config.json (layers, tie_word_embeddings)");
    }
    auto want = expected_shape(config_, name);
    auto& t = it->second;
    if (std::vector<int64_t>(t.sizes().begin(), t.sizes().end()) != want)
      fail(name, "shape " + shape_of(t) + " but config.json implies " + shape_str(want) +
                     "; the checkpoint does not match its config.json");
    // Always copy: the source may be a read-only view of a memory-mapped file.
    weights_[name] = t.to(device_, dtype_, /*non_blocking=*/false, /*copy=*/true);
  }
  const int64_t D = config_.head_dim;
  inv_freq_ = 1.0 / at::pow(config_.rope_theta, torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) /
                                                    static_cast<double>(D));
  inv_freq_ = inv_freq_.to(device_);
  const char* env = std::getenv("BITMERGE_FUSED_DECODE");
  const bool env_off = env && std::string(env) == "0";
  if (device_.is_cuda() && !env_off &&
      kernels::decode_kernels_cover(D, config_.num_attention_heads / config_.num_key_value_heads, dtype_))
    set_fused_decode(true);
  const char* pre = std::getenv("BITMERGE_FUSED_PREFILL");
  fused_prefill_ = pre && std::string(pre) == "1";
}

void Transformer::set_fused_decode(bool on) {
  if (on && qkv_w_.empty()) {
    torch::NoGradGuard no_grad;
    for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
      auto fuse = [&](std::vector<const char*> parts, std::vector<torch::Tensor>& dst) {
        std::vector<torch::Tensor> ts;
        for (const char* p : parts) ts.push_back(weights_.at(layer_name(l, p)));
        auto f = at::cat(ts, 0);
        int64_t off = 0;
        for (size_t i = 0; i < parts.size(); ++i) {
          const int64_t n = ts[i].size(0);
          weights_[layer_name(l, parts[i])] = f.narrow(0, off, n);
          off += n;
        }
        dst.push_back(f);
      };
      fuse({"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}, qkv_w_);
      fuse({"mlp.gate_proj.weight", "mlp.up_proj.weight"}, gate_up_w_);
    }
  }
  fused_decode_ = on;
}

std::shared_ptr<Transformer> Transformer::load(const std::string& model_dir, torch::Device device, torch::Dtype dtype) {
  return from_checkpoint(*Checkpoint::open(model_dir), device, dtype);
}

std::shared_ptr<Transformer> Transformer::from_checkpoint(const Checkpoint& ck, torch::Device device,
                                                          torch::Dtype dtype) {
  const auto& config = ck.config();
  std::map<std::string, torch::Tensor> weights;
  // Only the tensors the forward uses; each copied to the target right away
  // (safetensors views stay zero-copy until then). Missing ones: the constructor names them.
  for (const auto& name : llama_tensor_names(static_cast<int>(config.num_hidden_layers), config.tie_word_embeddings))
    if (ck.has(name)) weights[name] = ck.get(name).to(device, dtype, false, /*copy=*/true);
  if (weights.empty()) fail(ck.dir(), "holds none of the LLaMA/Mistral tensor names; is it a LlamaForCausalLM checkpoint?");
  return std::make_shared<Transformer>(config, std::move(weights), device, dtype);
}

std::shared_ptr<Transformer> Transformer::random_init(const ModelConfig& config, uint64_t seed, torch::Device device,
                                                      torch::Dtype dtype) {
  ModelConfig c = config;
  if (c.head_dim <= 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  if (c.num_key_value_heads <= 0) c.num_key_value_heads = c.num_attention_heads;
  auto gen = at::detail::createCPUGenerator(seed);
  std::map<std::string, torch::Tensor> w;
  for (const auto& name : llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings)) {
    auto shape = expected_shape(c, name);
    if (shape.size() == 1)
      w[name] = torch::ones(shape, torch::kFloat32);
    else
      w[name] = at::normal(0.0, 0.02, shape, gen, torch::TensorOptions().dtype(torch::kFloat32));
  }
  return std::make_shared<Transformer>(c, std::move(w), device, dtype);
}

KVCache Transformer::make_cache(int64_t batch, int64_t max_len) const {
  KVCache c;
  c.max_len = max_len;
  auto opts = torch::TensorOptions().device(device_).dtype(dtype_);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    c.k.push_back(torch::zeros({batch, config_.num_key_value_heads, max_len, config_.head_dim}, opts));
    c.v.push_back(torch::zeros({batch, config_.num_key_value_heads, max_len, config_.head_dim}, opts));
  }
  c.pos = torch::zeros({batch, max_len}, torch::TensorOptions().device(device_).dtype(torch::kInt64));
  return c;
}

torch::Tensor Transformer::lm_head(const torch::Tensor& h) const {
  const auto& w = config_.tie_word_embeddings ? weights_.at("model.embed_tokens.weight") : weights_.at("lm_head.weight");
  return at::linear(h, w);
}

// The normed last hidden state -> final_hidden (skip_logits) or logits
// (float32 on CPU), the same for the unfused and the fused decode path.
void Transformer::finish(const torch::Tensor& fin, const ForwardOptions& opts, ForwardOutput& out) const {
  if (opts.skip_logits) {
    out.final_hidden = fin;
    return;
  }
  out.logits = lm_head(fin);
  if (device_.is_cpu() && out.logits.scalar_type() != torch::kFloat32) out.logits = out.logits.to(torch::kFloat32);
}

ForwardOutput Transformer::forward(const torch::Tensor& tokens_in, const ForwardOptions& opts) const {
  if (tokens_in.dim() != 2) fail("forward", "tokens must be [batch, time], got " + shape_of(tokens_in));
  const auto& c = config_;
  auto tokens = tokens_in.to(device_, torch::kInt64);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, D = c.head_dim;
  KVCache* cache = opts.cache;
  const int64_t past = cache ? opts.cache_pos : 0;
  const bool per_row = opts.cache_rows.has_value();
  if (per_row && (!cache || T != 1 || (!opts.attention_mask && !opts.row_start)))
    fail("forward", "cache_rows needs a cache, one token per row and an attention_mask or row_start");
  if (opts.row_start && !per_row) fail("forward", "row_start needs cache_rows (one-token-per-row decoding)");
  const int64_t S = past + (per_row ? 1 : T);  // keys visible to this step
  if (cache && S > cache->max_len)
    fail("forward", "KV cache of " + std::to_string(cache->max_len) + " slots too short for " + std::to_string(S) +
                        " tokens; make a larger cache");
  if (per_row && opts.row_start && fused_decode_ && opts.output_hidden_layer < 0) return decode_fused(tokens, opts);
  const auto i64 = torch::TensorOptions().device(device_).dtype(torch::kInt64);

  torch::Tensor row_slot, row_first;  // [B, 1] with row_start
  if (opts.row_start) {
    row_slot = opts.cache_rows->to(device_, torch::kInt64).view({B, 1});
    row_first = opts.row_start->to(device_, torch::kInt64).view({B, 1});
  }
  torch::Tensor positions = opts.positions   ? opts.positions->to(device_, torch::kInt64)
                            : opts.row_start ? row_slot - row_first
                                             : (torch::arange(past, S, i64).unsqueeze(0).expand({B, T}));
  torch::Tensor kv_pos;  // [B, S]
  torch::Tensor rows_idx;  // [B, 1] per-row write slots
  if (per_row) {
    rows_idx = opts.cache_rows->to(device_, torch::kInt64).view({B, 1});
    if (rows_idx.size(0) != B) fail("forward", "cache_rows must have one entry per row");
    cache->pos.scatter_(1, rows_idx, positions);
    kv_pos = cache->pos.narrow(1, 0, S);
  } else if (cache) {
    cache->pos.narrow(1, past, T).copy_(positions);
    kv_pos = cache->pos.narrow(1, 0, S);
  } else {
    kv_pos = positions;
  }

  // Attention mask [B, 1, T, S] (true = attend), or none when plain causal suffices.
  torch::Tensor mask;
  bool need_window = c.sliding_window > 0 && S > c.sliding_window;
  if (per_row) {
    // built below
  } else if (opts.full_mask) {
    mask = opts.full_mask->to(device_, torch::kBool);
    if (mask.dim() != 3 || mask.size(0) != B || mask.size(1) != T || mask.size(2) != S)
      fail("forward", "full_mask must be [B, T, T_total], got " + shape_of(mask));
  } else if (opts.attention_mask || need_window || (T > 1 && past > 0)) {
    auto q_idx = torch::arange(past, S, i64).view({T, 1});
    auto k_idx = torch::arange(0, S, i64).view({1, S});
    mask = (k_idx <= q_idx).unsqueeze(0).expand({B, T, S});
    if (opts.attention_mask) {
      auto am = opts.attention_mask->to(device_, torch::kBool);
      if (am.dim() != 2 || am.size(0) != B || am.size(1) != S)
        fail("forward", "attention_mask must be [B, T_total=" + std::to_string(S) + "], got " + shape_of(am));
      mask = mask & am.unsqueeze(1);
    }
  }
  if (need_window && !per_row) {
    auto win = (positions.unsqueeze(2) - kv_pos.unsqueeze(1)) < c.sliding_window;  // [B, T, S]
    mask = mask & win;
  }
  if (per_row) {  // the caller's mask is exact: no causal/self additions
    torch::Tensor am;
    if (opts.attention_mask) {
      am = opts.attention_mask->to(device_, torch::kBool);
    } else {
      auto ar = torch::arange(S, i64).view({1, S});
      am = (ar >= row_first) & (ar <= row_slot);
    }
    if (am.dim() != 2 || am.size(0) != B || am.size(1) != S)
      fail("forward", "attention_mask must be [B, cache_pos + 1=" + std::to_string(S) + "], got " + shape_of(am));
    mask = am.unsqueeze(1);  // [B, 1, S]
    if (need_window) mask = mask & ((positions.unsqueeze(2) - kv_pos.unsqueeze(1)) < c.sliding_window);
    mask = mask.unsqueeze(1);
    if (!device_.is_cpu())  // additive fp32 for the CUDA decode attention below
      mask = torch::zeros(mask.sizes(), torch::TensorOptions().device(device_).dtype(torch::kFloat32))
                 .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  } else if (mask.defined()) {
    if (!opts.full_mask) {  // every query keeps itself
      auto diag = torch::arange(past, S, i64).view({1, T, 1}) == torch::arange(0, S, i64).view({1, 1, S});
      mask = mask | diag;
    }
    mask = mask.unsqueeze(1);
    // CUDA: convert once to an additive mask in the model dtype instead of
    // letting every layer's SDPA call convert the boolean one.
    if (!device_.is_cpu())
      mask = torch::zeros(mask.sizes(), torch::TensorOptions().device(device_).dtype(dtype_))
                 .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  }
  const bool is_causal = !mask.defined() && T > 1;  // past == 0 here

  // RoPE tables (fp32, then model dtype), [B, 1, T, D]
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.view({1, 1, -1});
  auto emb = at::cat({freqs, freqs}, -1);
  auto cos = emb.cos().to(dtype_).unsqueeze(1), sin = emb.sin().to(dtype_).unsqueeze(1);

  ForwardOutput out;
  auto x = at::embedding(weights_.at("model.embed_tokens.weight"), tokens);
  if (opts.output_hidden_layer == 0) out.hidden = x;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  // Fused whole-sequence path (set_fused_prefill): x is updated in place by
  // the next norm, which also adds the pending MLP output.
  const bool fuse = fused_prefill() && !per_row && opts.output_hidden_layer < 0 && !at::GradMode::is_enabled();
  const int64_t H = c.hidden_size;
  auto x2 = fuse ? x.view({B * T, H}) : torch::Tensor();
  torch::Tensor pending;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto W = [&](const char* s) -> const torch::Tensor& { return weights_.at(layer_name(l, s)); };
    torch::Tensor h, q, k, v;
    if (fuse) {
      h = kernels::add_rms_norm(x2, pending, W("input_layernorm.weight"), c.rms_norm_eps);
      auto qkv = at::linear(h, qkv_w_[static_cast<size_t>(l)]);  // [B*T, (nh + 2 nkv) * D]
      q = qkv.narrow(1, 0, nh * D).view({B, T, nh, D}).transpose(1, 2);
      k = qkv.narrow(1, nh * D, nkv * D).view({B, T, nkv, D}).transpose(1, 2);
      v = qkv.narrow(1, (nh + nkv) * D, nkv * D).view({B, T, nkv, D}).transpose(1, 2);
    } else {
      h = rms_norm(x, W("input_layernorm.weight"), c.rms_norm_eps);
      q = at::linear(h, W("self_attn.q_proj.weight")).view({B, T, nh, D}).transpose(1, 2);
      k = at::linear(h, W("self_attn.k_proj.weight")).view({B, T, nkv, D}).transpose(1, 2);
      v = at::linear(h, W("self_attn.v_proj.weight")).view({B, T, nkv, D}).transpose(1, 2);
    }
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    if (per_row) {
      auto idx = rows_idx.view({B, 1, 1, 1}).expand({B, nkv, 1, D});
      cache->k[l].scatter_(2, idx, k);
      cache->v[l].scatter_(2, idx, v);
      k = cache->k[l].narrow(2, 0, S);
      v = cache->v[l].narrow(2, 0, S);
    } else if (cache) {
      cache->k[l].narrow(2, past, T).copy_(k);
      cache->v[l].narrow(2, past, T).copy_(v);
      k = cache->k[l].narrow(2, 0, S);
      v = cache->v[l].narrow(2, 0, S);
    }
    torch::Tensor a;
    if (per_row && !device_.is_cpu()) {
      // CUDA decode (one query per row): two batched matmuls over the cache
      // with the query heads of one K/V head side by side, so GQA reads each
      // K/V head once and nothing is copied; softmax in fp32 (as SDPA).
      const int64_t rep = nh / nkv;
      auto q3 = q.reshape({B * nkv, rep, D});
      auto k3 = k.reshape({B * nkv, S, D});  // views of the cache (batch dims collapse)
      auto v3 = v.reshape({B * nkv, S, D});
      auto sc = at::bmm(q3, k3.transpose(1, 2)).view({B, nh, S}).to(torch::kFloat32) * scale;
      sc = sc + mask.view({B, 1, S});
      auto p = at::softmax(sc, -1).to(dtype_).view({B * nkv, rep, S});
      a = at::bmm(p, v3).view({B, T, nh * D});
    } else {
      // CUDA without a mask (flash): SDPA reads the shared K/V heads itself. With a
      // mask (memory-efficient kernel has no GQA) and on CPU: copies, as HF's repeat_kv.
      const bool sdpa_gqa = nkv != nh && !device_.is_cpu() && !mask.defined();
      if (nkv != nh && !sdpa_gqa) {
        const int64_t rep = nh / nkv;
        k = k.unsqueeze(2).expand({B, nkv, rep, S, D}).reshape({B, nh, S, D});
        v = v.unsqueeze(2).expand({B, nkv, rep, S, D}).reshape({B, nh, S, D});
      }
      a = at::scaled_dot_product_attention(q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt,
                                           0.0, is_causal, scale, sdpa_gqa);
      a = a.transpose(1, 2).reshape({B, T, nh * D});
    }
    if (fuse) {
      auto o = at::linear(a, W("self_attn.o_proj.weight")).view({B * T, H});
      h = kernels::add_rms_norm(x2, o, W("post_attention_layernorm.weight"), c.rms_norm_eps);
      auto g = kernels::silu_mul(at::linear(h, gate_up_w_[static_cast<size_t>(l)]));
      pending = at::linear(g, W("mlp.down_proj.weight"));
      continue;
    }
    x = x + at::linear(a, W("self_attn.o_proj.weight"));
    h = rms_norm(x, W("post_attention_layernorm.weight"), c.rms_norm_eps);
    auto g = at::silu(at::linear(h, W("mlp.gate_proj.weight"))) * at::linear(h, W("mlp.up_proj.weight"));
    x = x + at::linear(g, W("mlp.down_proj.weight"));
    if (opts.output_hidden_layer == l + 1) out.hidden = x;
  }
  auto fin = fuse ? kernels::add_rms_norm(x2, pending, weights_.at("model.norm.weight"), c.rms_norm_eps).view({B, T, H})
                  : rms_norm(x, weights_.at("model.norm.weight"), c.rms_norm_eps);
  finish(fin, opts, out);
  return out;
}

// One token per row against the per-row cache (see set_fused_decode). Same
// values as the unfused path up to reduction order: residual adds, norms,
// RoPE and SiLU*up round to the model dtype at the same points; attention
// scores and softmax stay in fp32 (as SDPA).
ForwardOutput Transformer::decode_fused(const torch::Tensor& tokens, const ForwardOptions& opts) const {
  const auto& c = config_;
  const int64_t B = tokens.size(0), H = c.hidden_size;
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, D = c.head_dim;
  KVCache* cache = opts.cache;
  const int64_t S = opts.cache_pos + 1;
  auto slot = opts.cache_rows->to(device_, torch::kInt64).reshape({B}).contiguous();
  auto first = opts.row_start->to(device_, torch::kInt64).reshape({B}).contiguous();
  cache->pos.scatter_(1, slot.view({B, 1}), (slot - first).view({B, 1}));
  const int64_t window = c.sliding_window > 0 ? c.sliding_window : 0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto x = at::embedding(weights_.at("model.embed_tokens.weight"), tokens.reshape({B}));
  torch::Tensor pending;  // the MLP output of the previous layer, added by the next norm
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto W = [&](const char* s) -> const torch::Tensor& { return weights_.at(layer_name(l, s)); };
    auto h = kernels::add_rms_norm(x, pending, W("input_layernorm.weight"), c.rms_norm_eps);
    auto qkv = at::linear(h, qkv_w_[static_cast<size_t>(l)]);
    auto q = kernels::rope_qkv_to_cache(qkv, nh, nkv, D, slot, first, inv_freq_, cache->k[static_cast<size_t>(l)],
                                        cache->v[static_cast<size_t>(l)]);
    auto a = kernels::decode_attention(q, cache->k[static_cast<size_t>(l)], cache->v[static_cast<size_t>(l)], slot,
                                       first, S, window, scale);
    auto o = at::linear(a, W("self_attn.o_proj.weight"));
    h = kernels::add_rms_norm(x, o, W("post_attention_layernorm.weight"), c.rms_norm_eps);
    auto g = kernels::silu_mul(at::linear(h, gate_up_w_[static_cast<size_t>(l)]));
    pending = at::linear(g, W("mlp.down_proj.weight"));
  }
  auto fin = kernels::add_rms_norm(x, pending, weights_.at("model.norm.weight"), c.rms_norm_eps).view({B, 1, H});
  ForwardOutput out;
  finish(fin, opts, out);
  return out;
}

}  // namespace bm
