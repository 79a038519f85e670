// The fused decode step (owner: kernels; used by harness/models/transformer
// for one-token-per-row decoding with a per-row K/V cache). Torch wrappers
// validate, then run the CUDA kernels (kernels/decode.cu) for 16-bit CUDA
// tensors of a supported shape, else the libtorch references below, which
// are the composite ops of the transformer's unfused path (same rounding
// points) and the tests' oracle.
#pragma once
#include <torch/types.h>

namespace bm::kernels {

// x [rows, H] (updated in place: x = x + delta when delta is defined), returns
// RMSNorm(x) * w exactly as HF: w * dtype(float(x) * rsqrt(mean(float(x)^2) + eps)).
torch::Tensor add_rms_norm(torch::Tensor& x, const torch::Tensor& delta, const torch::Tensor& w, double eps);

// qkv [rows, (nh + 2 nkv) * D] of the fused projection; slot/start [rows]
// int64 (row b is at position slot[b] - start[b]); inv_freq [D/2] fp32.
// Writes RoPE(k), v into cache_k/cache_v [B >= rows, nkv, L, D] at
// [b, :, slot[b]] and returns RoPE(q) [rows, nh, D].
torch::Tensor rope_qkv_to_cache(const torch::Tensor& qkv, int64_t nh, int64_t nkv, int64_t D, const torch::Tensor& slot,
                                const torch::Tensor& start, const torch::Tensor& inv_freq, torch::Tensor& cache_k,
                                torch::Tensor& cache_v);

// q [rows, nh, D] against the first S slots of the cache: row b attends keys
// [max(start[b], slot[b] - window + 1 when window > 0), slot[b]]; fp32
// scores/softmax/sums; returns [rows, nh * D] in q's dtype.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& slot, const torch::Tensor& start, int64_t S, int64_t window,
                               double scale);

// gu [rows, 2I] (gate | up) -> dtype(dtype(silu(gate)) * up) [rows, I].
torch::Tensor silu_mul(const torch::Tensor& gu);

// True when this build would run decode_attention on CUDA for head_dim D,
// nh / nkv = rep and the given dtype (else the reference runs, also on CUDA).
bool decode_kernels_cover(int64_t D, int64_t rep, torch::Dtype dtype);

namespace ref {
torch::Tensor add_rms_norm(torch::Tensor& x, const torch::Tensor& delta, const torch::Tensor& w, double eps);
torch::Tensor rope_qkv_to_cache(const torch::Tensor& qkv, int64_t nh, int64_t nkv, int64_t D, const torch::Tensor& slot,
                                const torch::Tensor& start, const torch::Tensor& inv_freq, torch::Tensor& cache_k,
                                torch::Tensor& cache_v);
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& slot, const torch::Tensor& start, int64_t S, int64_t window,
                               double scale);
torch::Tensor silu_mul(const torch::Tensor& gu);
}  // namespace ref

}  // namespace bm::kernels
