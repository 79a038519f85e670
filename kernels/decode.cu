// CUDA kernels of the fused decode step (no torch): RMSNorm with the residual
// add folded in, RoPE + K/V cache write, flash-decoding attention over each
// row's own key range, SiLU * up. Values are rounded to the model dtype at the
// same points as the libtorch composite ops (kernels/decode.hpp references),
// so only reduction order differs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "kernels/decode_cuda.h"
#include "kernels/launch.cuh"

namespace bm::kernels::cuda {
namespace {

template <typename T>
struct Cv;
template <>
struct Cv<__nv_bfloat16> {
  __device__ static float f(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 t(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Cv<__half> {
  __device__ static float f(__half v) { return __half2float(v); }
  __device__ static __half t(float v) { return __float2half_rn(v); }
};
// Round through the dtype and back.
template <typename T>
__device__ __forceinline__ float rnd(float v) {
  return Cv<T>::f(Cv<T>::t(v));
}

constexpr int kNormThreads = 256;

template <typename T>
__global__ void add_rms_norm_kernel(T* __restrict__ x, const T* __restrict__ delta, const T* __restrict__ w,
                                    T* __restrict__ out, int64_t H, float eps) {
  const int64_t r = blockIdx.x;
  T* xr = x + r * H;
  T* orow = out + r * H;
  float ss = 0.f;
  if (delta) {
    const T* dr = delta + r * H;
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
      const T s = Cv<T>::t(__fadd_rn(Cv<T>::f(xr[i]), Cv<T>::f(dr[i])));
      xr[i] = s;
      const float v = Cv<T>::f(s);
      ss += v * v;
    }
  } else {
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
      const float v = Cv<T>::f(xr[i]);
      ss += v * v;
    }
  }
  __shared__ float red[kNormThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) red[0] = v;
  }
  __syncthreads();
  const float rinv = rsqrtf(__fadd_rn(red[0] / static_cast<float>(H), eps));
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    const float hn = rnd<T>(__fmul_rn(Cv<T>::f(xr[i]), rinv));
    orow[i] = Cv<T>::t(__fmul_rn(Cv<T>::f(w[i]), hn));
  }
}

// One block per (row, head of q or kv); thread d handles the pair (d, d + D/2).
template <typename T>
__global__ void rope_qkv_kernel(const T* __restrict__ qkv, int nh, int nkv, int D, const int64_t* __restrict__ slot,
                                const int64_t* __restrict__ start, const float* __restrict__ inv_freq,
                                T* __restrict__ q_out, T* __restrict__ ck, T* __restrict__ cv, int64_t L) {
  const int64_t b = blockIdx.x;
  const int h = blockIdx.y;  // 0..nh-1: q heads, nh..nh+nkv-1: kv heads
  const int half = D / 2;
  const int64_t s = slot[b];
  const float pos = static_cast<float>(s - start[b]);
  const T* row = qkv + b * static_cast<int64_t>(nh + 2 * nkv) * D;
  for (int d = threadIdx.x; d < half; d += blockDim.x) {
    const float fr = __fmul_rn(pos, inv_freq[d]);
    const float c = rnd<T>(cosf(fr)), sn = rnd<T>(sinf(fr));
    const T* src = row + static_cast<int64_t>(h) * D;  // q head h or k head h - nh
    const float x1 = Cv<T>::f(src[d]), x2 = Cv<T>::f(src[d + half]);
    // HF: x * cos + rotate_half(x) * sin, every op rounded to the dtype.
    const T o1 = Cv<T>::t(__fadd_rn(rnd<T>(__fmul_rn(x1, c)), rnd<T>(__fmul_rn(-x2, sn))));
    const T o2 = Cv<T>::t(__fadd_rn(rnd<T>(__fmul_rn(x2, c)), rnd<T>(__fmul_rn(x1, sn))));
    if (h < nh) {
      T* q = q_out + (b * nh + h) * static_cast<int64_t>(D);
      q[d] = o1;
      q[d + half] = o2;
    } else {
      const int j = h - nh;
      const int64_t off = ((b * nkv + j) * L + s) * D;
      ck[off + d] = o1;
      ck[off + d + half] = o2;
      const T* vs = row + static_cast<int64_t>(nh + nkv + j) * D;
      cv[off + d] = vs[d];
      cv[off + d + half] = vs[d + half];
    }
  }
}

// ---- decode attention ----
constexpr int kAttnThreads = 128;
constexpr int kAttnWarps = kAttnThreads / 32;
constexpr int kMaxChunk = 1024;

__device__ __forceinline__ void load8f(const __nv_bfloat16* p, float (&f)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ void load8f(const __half* p, float (&f)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// Block-wide all-reduce of REP values (max or sum); tmp: kAttnWarps * REP floats.
template <int REP, bool MAX>
__device__ __forceinline__ void block_allreduce(float (&v)[REP], float* tmp) {
#pragma unroll
  for (int r = 0; r < REP; ++r)
    for (int o = 16; o > 0; o >>= 1) {
      const float u = __shfl_xor_sync(0xffffffffu, v[r], o);
      v[r] = MAX ? fmaxf(v[r], u) : v[r] + u;
    }
  const int warp = threadIdx.x >> 5;
  __syncthreads();  // tmp may still be read from a previous call
  if ((threadIdx.x & 31) == 0)
#pragma unroll
    for (int r = 0; r < REP; ++r) tmp[warp * REP + r] = v[r];
  __syncthreads();
#pragma unroll
  for (int r = 0; r < REP; ++r) {
    float a = tmp[r];
    for (int w = 1; w < kAttnWarps; ++w) a = MAX ? fmaxf(a, tmp[w * REP + r]) : a + tmp[w * REP + r];
    v[r] = a;
  }
}

// Grid (splits, nkv, rows). TPS threads hold one key's D values (8 each), so a
// block walks SPI keys per iteration; the scores of the block's chunk live in
// shared memory (REP x chunk), K and V are each read once.
template <typename T, int D, int REP>
__global__ void __launch_bounds__(kAttnThreads)
    decode_attn_kernel(const T* __restrict__ q, const T* __restrict__ ck, const T* __restrict__ cv, int nh, int nkv,
                       int64_t L, int64_t S, const int64_t* __restrict__ slot, const int64_t* __restrict__ start,
                       int64_t window, float scale_log2, int splits, int chunk, float* __restrict__ ws,
                       T* __restrict__ out) {
  constexpr int TPS = D / 8;
  constexpr int SPI = kAttnThreads / TPS;
  extern __shared__ float smem[];
  float* sc = smem;                             // [REP][chunk]
  float* tmp = smem + REP * chunk;              // [kAttnWarps][REP]
  float* red = tmp + kAttnWarps * REP;          // [kAttnWarps][REP][D]
  const int split = blockIdx.x, j_kv = blockIdx.y;
  const int64_t b = blockIdx.z;
  const int tid = threadIdx.x, sub = tid % TPS, grp = tid / TPS;
  const int64_t hi = slot[b];
  int64_t lo = start[b];
  if (window > 0 && hi - window + 1 > lo) lo = hi - window + 1;
  const int64_t c0 = static_cast<int64_t>(split) * chunk;
  int64_t c1 = c0 + chunk;
  if (c1 > S) c1 = S;
  const int64_t j0 = c0 > lo ? c0 : lo;
  const int64_t j1 = c1 < hi + 1 ? c1 : hi + 1;
  const int n = j1 > j0 ? static_cast<int>(j1 - j0) : 0;

  float qf[REP][8];
#pragma unroll
  for (int r = 0; r < REP; ++r) {
    const T* qp = q + ((b * nh) + static_cast<int64_t>(j_kv) * REP + r) * D + sub * 8;
    load8f(qp, qf[r]);
  }
  const T* kbase = ck + ((b * nkv + j_kv) * L) * D + sub * 8;
  const T* vbase = cv + ((b * nkv + j_kv) * L) * D + sub * 8;

  float m[REP];
#pragma unroll
  for (int r = 0; r < REP; ++r) m[r] = -FLT_MAX;
  for (int base = 0; base < n; base += SPI) {  // uniform trip count (full-mask shuffles)
    const int i = base + grp;
    const bool ok = i < n;
    float kf[8];
    if (ok) {
      load8f(kbase + (j0 + i) * D, kf);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) kf[e] = 0.f;
    }
#pragma unroll
    for (int r = 0; r < REP; ++r) {
      float d = 0.f;
#pragma unroll
      for (int e = 0; e < 8; ++e) d = fmaf(qf[r][e], kf[e], d);
#pragma unroll
      for (int o = TPS / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
      d *= scale_log2;  // base-2 logits
      if (ok) {
        if (sub == 0) sc[r * chunk + i] = d;
        m[r] = fmaxf(m[r], d);
      }
    }
  }
  block_allreduce<REP, true>(m, tmp);
  float l[REP];
#pragma unroll
  for (int r = 0; r < REP; ++r) l[r] = 0.f;
  __syncthreads();  // scores written by other threads
  for (int i = tid; i < n; i += kAttnThreads)
#pragma unroll
    for (int r = 0; r < REP; ++r) {
      const float p = exp2f(sc[r * chunk + i] - m[r]);
      sc[r * chunk + i] = p;
      l[r] += p;
    }
  block_allreduce<REP, false>(l, tmp);  // its barriers also publish the p values
  float acc[REP][8];
#pragma unroll
  for (int r = 0; r < REP; ++r)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[r][e] = 0.f;
  for (int i = grp; i < n; i += SPI) {
    float vf[8];
    load8f(vbase + (j0 + i) * D, vf);
#pragma unroll
    for (int r = 0; r < REP; ++r) {
      const float p = sc[r * chunk + i];
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] = fmaf(p, vf[e], acc[r][e]);
    }
  }
  // Sum over the key groups: lanes TPS apart in a warp, then across warps.
#pragma unroll
  for (int r = 0; r < REP; ++r)
#pragma unroll
    for (int e = 0; e < 8; ++e)
#pragma unroll
      for (int o = 16; o >= TPS; o >>= 1) acc[r][e] += __shfl_xor_sync(0xffffffffu, acc[r][e], o);
  const int warp = tid >> 5, lane = tid & 31;
  if (lane < TPS)
#pragma unroll
    for (int r = 0; r < REP; ++r)
#pragma unroll
      for (int e = 0; e < 8; ++e) red[(warp * REP + r) * D + lane * 8 + e] = acc[r][e];
  __syncthreads();
  for (int idx = tid; idx < REP * D; idx += kAttnThreads) {
    const int r = idx / D, d = idx % D;
    float a = 0.f;
#pragma unroll
    for (int w = 0; w < kAttnWarps; ++w) a += red[(w * REP + r) * D + d];
    const int64_t h = static_cast<int64_t>(j_kv) * REP + r;
    float lr = 0.f, mr = 0.f;
#pragma unroll
    for (int rr = 0; rr < REP; ++rr)
      if (rr == r) lr = l[rr], mr = m[rr];
    if (splits == 1) {
      out[(b * nh + h) * D + d] = Cv<T>::t(lr > 0.f ? a / lr : 0.f);
    } else {
      const int64_t pidx = (b * nh + h) * splits + split;
      ws[pidx * (D + 2) + d] = a;
      if (d == 0) {
        ws[pidx * (D + 2) + D] = n > 0 ? mr : -FLT_MAX;
        ws[pidx * (D + 2) + D + 1] = lr;
      }
    }
  }
}

// Grid rows * nh, D threads: merge the splits' (acc, m, l).
template <typename T>
__global__ void decode_combine_kernel(const float* __restrict__ ws, int splits, int D, T* __restrict__ out) {
  const int64_t bh = blockIdx.x;
  const float* p = ws + bh * splits * (D + 2);
  float M = -FLT_MAX;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, p[s * (D + 2) + D]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float num = 0.f, den = 0.f;
    for (int s = 0; s < splits; ++s) {
      const float* ps = p + s * (D + 2);
      if (ps[D + 1] <= 0.f) continue;
      const float w = exp2f(ps[D] - M);
      num += w * ps[d];
      den += w * ps[D + 1];
    }
    out[bh * D + d] = Cv<T>::t(den > 0.f ? num / den : 0.f);
  }
}

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gu, int64_t rows, int64_t I, T* __restrict__ out) {
  const int64_t n = rows * I;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / I, i = e % I;
    const float g = Cv<T>::f(gu[r * 2 * I + i]), u = Cv<T>::f(gu[r * 2 * I + I + i]);
    const float sg = rnd<T>(g / (1.0f + expf(-g)));
    out[e] = Cv<T>::t(__fmul_rn(sg, u));
  }
}

size_t attn_smem_bytes(int D, int rep, int chunk) {
  return sizeof(float) * (static_cast<size_t>(rep) * chunk + kAttnWarps * rep + static_cast<size_t>(kAttnWarps) * rep * D);
}

template <typename T, int D, int REP>
cudaError_t launch_attn(const void* q, const void* ck, const void* cv, int64_t rows, int nh, int nkv, int64_t L,
                        int64_t S, const int64_t* slot, const int64_t* start, int64_t window, float scale, int splits,
                        float* ws, void* out, cudaStream_t stream) {
  const int chunk = static_cast<int>((S + splits - 1) / splits);
  const size_t smem = attn_smem_bytes(D, REP, chunk);
  auto kern = decode_attn_kernel<T, D, REP>;
  static bool opted_in = false;  // the largest chunk's shared memory, once per instantiation
  if (!opted_in) {
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(attn_smem_bytes(D, REP, kMaxChunk)));
    if (e != cudaSuccess) return e;
    opted_in = true;
  }
  dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(nkv), static_cast<unsigned>(rows));
  kern<<<grid, kAttnThreads, smem, stream>>>(static_cast<const T*>(q), static_cast<const T*>(ck),
                                             static_cast<const T*>(cv), nh, nkv, L, S, slot, start, window,
                                             scale * 1.4426950408889634f, splits, chunk, ws, static_cast<T*>(out));
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || splits == 1) return e;
  decode_combine_kernel<T><<<static_cast<unsigned>(rows * nh), D, 0, stream>>>(ws, splits, D, static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t attn_rep(int rep, const void* q, const void* ck, const void* cv, int64_t rows, int nh, int nkv, int64_t L,
                     int64_t S, const int64_t* slot, const int64_t* start, int64_t window, float scale, int splits,
                     float* ws, void* out, cudaStream_t stream) {
  switch (rep) {
    case 1: return launch_attn<T, D, 1>(q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
    case 2: return launch_attn<T, D, 2>(q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
    case 3: return launch_attn<T, D, 3>(q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
    case 4: return launch_attn<T, D, 4>(q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
    case 8: return launch_attn<T, D, 8>(q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T>
cudaError_t attn_dim(int D, int rep, const void* q, const void* ck, const void* cv, int64_t rows, int nh, int nkv,
                     int64_t L, int64_t S, const int64_t* slot, const int64_t* start, int64_t window, float scale,
                     int splits, float* ws, void* out, cudaStream_t stream) {
  if (D == 64) return attn_rep<T, 64>(rep, q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
  if (D == 128) return attn_rep<T, 128>(rep, q, ck, cv, rows, nh, nkv, L, S, slot, start, window, scale, splits, ws, out, stream);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t add_rms_norm(void* x, const void* delta, const void* w, void* out, int64_t rows, int64_t H, float eps,
                         DType dt, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (dt == DType::BF16)
    add_rms_norm_kernel<__nv_bfloat16><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<__nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(delta), static_cast<const __nv_bfloat16*>(w),
        static_cast<__nv_bfloat16*>(out), H, eps);
  else if (dt == DType::F16)
    add_rms_norm_kernel<__half><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<__half*>(x), static_cast<const __half*>(delta), static_cast<const __half*>(w),
        static_cast<__half*>(out), H, eps);
  else
    return cudaErrorInvalidValue;
  return cudaGetLastError();
}

cudaError_t rope_qkv_to_cache(const void* qkv, int64_t rows, int nh, int nkv, int D, const int64_t* slot,
                              const int64_t* start, const float* inv_freq, void* q_out, void* cache_k, void* cache_v,
                              int64_t L, DType dt, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (D % 2 != 0) return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(nh + nkv));
  const int threads = D / 2 < 128 ? ((D / 2 + 31) / 32) * 32 : 128;
  if (dt == DType::BF16)
    rope_qkv_kernel<__nv_bfloat16><<<grid, threads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(qkv), nh, nkv, D, slot, start, inv_freq, static_cast<__nv_bfloat16*>(q_out),
        static_cast<__nv_bfloat16*>(cache_k), static_cast<__nv_bfloat16*>(cache_v), L);
  else if (dt == DType::F16)
    rope_qkv_kernel<__half><<<grid, threads, 0, stream>>>(static_cast<const __half*>(qkv), nh, nkv, D, slot, start,
                                                          inv_freq, static_cast<__half*>(q_out),
                                                          static_cast<__half*>(cache_k), static_cast<__half*>(cache_v), L);
  else
    return cudaErrorInvalidValue;
  return cudaGetLastError();
}

bool decode_attention_supported(int D, int rep) {
  return (D == 64 || D == 128) && (rep == 1 || rep == 2 || rep == 3 || rep == 4 || rep == 8);
}

int decode_attention_splits(int64_t rows, int nkv, int64_t S, int D, int rep) {
  (void)D;
  (void)rep;
  const int64_t blocks = rows * nkv;
  // ~16 resident 128-thread blocks per SM keep enough loads in flight for HBM
  // (4 per SM left GQA at 0.54x copy bandwidth: 64 rows x 8 kv heads = 512 blocks).
  const int64_t want = 16LL * sm_count();
  int64_t splits = blocks >= want ? 1 : (want + blocks - 1) / blocks;
  const int64_t max_by_len = (S + 63) / 64;  // chunks of at least 64 keys
  if (splits > max_by_len) splits = max_by_len;
  const int64_t min_by_smem = (S + kMaxChunk - 1) / kMaxChunk;
  if (splits < min_by_smem) splits = min_by_smem;
  return static_cast<int>(splits < 1 ? 1 : splits);
}

int64_t decode_attention_workspace_floats(int64_t rows, int nh, int splits, int D) {
  return splits > 1 ? rows * nh * splits * (D + 2) : 1;
}

cudaError_t decode_attention(const void* q, const void* cache_k, const void* cache_v, int64_t rows, int nh, int nkv,
                             int D, int64_t L, int64_t S, const int64_t* slot, const int64_t* start, int64_t window,
                             float scale, int splits, float* workspace, void* out, DType dt, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (nkv <= 0 || nh % nkv != 0 || S > L || splits < 1 || !decode_attention_supported(D, nh / nkv))
    return cudaErrorInvalidValue;
  if ((S + splits - 1) / splits > kMaxChunk) return cudaErrorInvalidValue;
  if (dt == DType::BF16)
    return attn_dim<__nv_bfloat16>(D, nh / nkv, q, cache_k, cache_v, rows, nh, nkv, L, S, slot, start, window, scale,
                                   splits, workspace, out, stream);
  if (dt == DType::F16)
    return attn_dim<__half>(D, nh / nkv, q, cache_k, cache_v, rows, nh, nkv, L, S, slot, start, window, scale, splits,
                            workspace, out, stream);
  return cudaErrorInvalidValue;
}

cudaError_t silu_mul(const void* gu, int64_t rows, int64_t I, void* out, DType dt, cudaStream_t stream) {
  const int64_t n = rows * I;
  if (n <= 0) return cudaSuccess;
  const int threads = 256;
  const int blocks = grid_for(n, threads, 8);
  if (dt == DType::BF16)
    silu_mul_kernel<__nv_bfloat16><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(gu), rows, I, static_cast<__nv_bfloat16*>(out));
  else if (dt == DType::F16)
    silu_mul_kernel<__half><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(static_cast<const __half*>(gu), rows,
                                                                                   I, static_cast<__half*>(out));
  else
    return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace bm::kernels::cuda
