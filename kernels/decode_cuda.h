// Raw-pointer CUDA launchers of the fused decode step (no torch). Each returns
// the launch's cudaError_t; all work is queued on `stream` and is safe to
// capture in a CUDA graph (no host syncs, no allocation). Only the 16-bit
// model dtypes (F16, BF16) are handled; the arithmetic (where values are
// rounded to the model dtype) is the one of kernels/decode.hpp's references.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/onebit_cuda.h"  // DType

namespace bm::kernels::cuda {

// x[rows, H] += delta (rounded to the dtype; skipped when delta == nullptr),
// then out[rows, H] = dtype(w * dtype(x * rsqrt(mean(x^2) + eps))).
cudaError_t add_rms_norm(void* x, const void* delta, const void* w, void* out, int64_t rows, int64_t H, float eps,
                         DType dt, cudaStream_t stream);

// qkv[rows, (nh + 2 nkv) * D] (q heads, then k, then v) -> q_out[rows, nh, D]
// with RoPE, and cache_k/cache_v[b, j, slot[b], :] (layout [B, nkv, L, D]) =
// RoPE(k_j), v_j. Position of row b = slot[b] - start[b]; inv_freq[D/2] fp32.
cudaError_t rope_qkv_to_cache(const void* qkv, int64_t rows, int nh, int nkv, int D, const int64_t* slot,
                              const int64_t* start, const float* inv_freq, void* q_out, void* cache_k, void* cache_v,
                              int64_t L, DType dt, cudaStream_t stream);

// True when decode_attention has a kernel for head_dim D and nh / nkv = rep.
bool decode_attention_supported(int D, int rep);
// Splits of the key range per (row, kv head) and the fp32 workspace they need.
int decode_attention_splits(int64_t rows, int nkv, int64_t S, int D, int rep);
int64_t decode_attention_workspace_floats(int64_t rows, int nh, int splits, int D);

// One query per row: out[b, h*D + d] = softmax_j(q_bh . k_bj * scale) v_bj
// over the keys j of row b in [max(start[b], slot[b] - window + 1 if window > 0),
// slot[b]] (all < S <= L); q[rows, nh, D], cache [B, nkv, L, D], head h reads
// kv head h / (nh / nkv). Scores, softmax and sums in fp32 (flash-decoding:
// `splits` key chunks per row and kv head, combined in a second kernel).
cudaError_t decode_attention(const void* q, const void* cache_k, const void* cache_v, int64_t rows, int nh, int nkv,
                             int D, int64_t L, int64_t S, const int64_t* slot, const int64_t* start, int64_t window,
                             float scale, int splits, float* workspace, void* out, DType dt, cudaStream_t stream);

// gu[rows, 2I] (gate, then up) -> out[rows, I] = dtype(dtype(silu(gate)) * up).
cudaError_t silu_mul(const void* gu, int64_t rows, int64_t I, void* out, DType dt, cudaStream_t stream);

}  // namespace bm::kernels::cuda
