// CUDA kernels of the 1-bit task-vector API (no torch). Every thread owns
// groups of 8 consecutive elements (= one byte of packed signs): 16-bit
// dtypes load one 128-bit vector per group, fp32 two. Grid-stride loops; the
// arithmetic follows kernels/onebit_ref.hpp (no FMA contraction: __fmul_rn /
// __fadd_rn) so results match the libtorch reference bit for bit.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/onebit_cuda.h"

namespace bm::kernels::cuda {
namespace {

constexpr int kThreads = 256;

template <DType D>
struct Elem;
template <>
struct Elem<DType::F32> {
  using T = float;
  __device__ static float to_f(float v) { return v; }
  __device__ static float from_f(float v) { return v; }
};
template <>
struct Elem<DType::F16> {
  using T = __half;
  __device__ static float to_f(__half v) { return __half2float(v); }
  __device__ static __half from_f(float v) { return __float2half_rn(v); }
};
template <>
struct Elem<DType::BF16> {
  using T = __nv_bfloat16;
  __device__ static float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 from_f(float v) { return __float2bfloat16_rn(v); }
};

// Loads group g (elements 8g .. 8g+7, those < n) of x as floats. VEC: x is
// 16-byte aligned, so a full group is one (16-bit) or two (fp32) 128-bit loads
// (plain loads: unpack_add reads and writes the same buffer).
template <DType D, bool VEC>
__device__ __forceinline__ int load8(const void* x, int64_t g, int64_t n, float (&f)[8]) {
  using T = typename Elem<D>::T;
  const T* p = static_cast<const T*>(x) + g * 8;
  const int64_t left = n - g * 8;
  const int cnt = left >= 8 ? 8 : static_cast<int>(left);
  if (VEC && cnt == 8) {
    constexpr int kVecs = sizeof(T) * 8 / 16;
    union {
      int4 v[kVecs];
      T t[8];
    } tmp;
#pragma unroll
    for (int v = 0; v < kVecs; ++v) tmp.v[v] = reinterpret_cast<const int4*>(p)[v];
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = Elem<D>::to_f(tmp.t[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = i < cnt ? Elem<D>::to_f(p[i]) : 0.0f;
  }
  return cnt;
}

template <DType D, bool VEC>
__device__ __forceinline__ void store8(void* x, int64_t g, int cnt, const float (&f)[8]) {
  using T = typename Elem<D>::T;
  T* p = static_cast<T*>(x) + g * 8;
  if (VEC && cnt == 8) {
    constexpr int kVecs = sizeof(T) * 8 / 16;
    union {
      int4 v[kVecs];
      T t[8];
    } tmp;
#pragma unroll
    for (int i = 0; i < 8; ++i) tmp.t[i] = Elem<D>::from_f(f[i]);
#pragma unroll
    for (int v = 0; v < kVecs; ++v) reinterpret_cast<int4*>(p)[v] = tmp.v[v];
  } else {
    for (int i = 0; i < cnt; ++i) p[i] = Elem<D>::from_f(f[i]);
  }
}

__device__ __forceinline__ float half_bits_to_float(const void* h) { return __half2float(*static_cast<const __half*>(h)); }

// ---- (a) pack signs + per-block sum|x| ----
template <DType D, bool VEC>
__global__ void __launch_bounds__(kThreads) pack_kernel(const void* __restrict__ x, int64_t n, uint8_t* __restrict__ bits,
                                                       float* __restrict__ partial) {
  const int64_t groups = (n + 7) / 8;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float acc = 0.0f;
  // Two groups per iteration, both loads issued first (more bytes in flight).
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += 2 * stride) {
    const int64_t g2 = g + stride;
    float f[2][8];
    int cnt[2];
    cnt[0] = load8<D, VEC>(x, g, n, f[0]);
    cnt[1] = g2 < groups ? load8<D, VEC>(x, g2, n, f[1]) : 0;
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      if (cnt[u] == 0) continue;
      uint32_t b = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (i < cnt[u]) {
          b |= (f[u][i] >= 0.0f ? 1u : 0u) << i;
          acc += fabsf(f[u][i]);
        }
      }
      bits[u ? g2 : g] = static_cast<uint8_t>(b);
    }
  }
  // block reduction of acc (fixed order -> deterministic for a given grid)
  __shared__ float warp_sums[kThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) s += warp_sums[w];
    partial[blockIdx.x] = s;
  }
}

// Sums the per-block partials in fp64 (fixed order) and writes fp16 alpha.
__global__ void alpha_kernel(const float* __restrict__ partial, int blocks, int64_t n, __half* alpha) {
  __shared__ double sums[kThreads];
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
  sums[threadIdx.x] = s;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) sums[threadIdx.x] += sums[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float a = n > 0 ? static_cast<float>(sums[0] / static_cast<double>(n)) : 0.0f;
    *alpha = __float2half_rn(a);
  }
}

// ---- (b) unpack (and add) ----
template <DType D, bool VEC, bool ACC>
__global__ void __launch_bounds__(kThreads) unpack_kernel(void* __restrict__ w, int64_t n, const uint8_t* __restrict__ bits,
                                                         const __half* __restrict__ alpha, double scale) {
  const float c = static_cast<float>(scale * static_cast<double>(__half2float(*alpha)));
  const int64_t groups = (n + 7) / 8;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  // Two groups per iteration, all loads issued before the stores.
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += 2 * stride) {
    const int64_t gg[2] = {g, g + stride};
    uint32_t b[2];
    float f[2][8];
    int cnt[2];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      cnt[u] = 0;
      if (gg[u] >= groups) continue;
      b[u] = __ldg(bits + gg[u]);
      if (ACC) {
        cnt[u] = load8<D, VEC>(w, gg[u], n, f[u]);
      } else {
        const int64_t left = n - gg[u] * 8;
        cnt[u] = left >= 8 ? 8 : static_cast<int>(left);
#pragma unroll
        for (int i = 0; i < 8; ++i) f[u][i] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      if (cnt[u] == 0) continue;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float s = ((b[u] >> i) & 1u) ? c : -c;
        f[u][i] = ACC ? __fadd_rn(f[u][i], s) : s;
      }
      store8<D, VEC>(w, gg[u], cnt[u], f[u]);
    }
  }
}

// ---- (c) fused TIES combine ----
struct CombineArgs {
  CombineInput in[kMaxCombine];
  float wsum;  // no-consensus divisor (already 1 where |sum| < 1e-8)
};

template <bool VEC>
__device__ __forceinline__ void load_input(const CombineInput& in, int64_t g, int64_t n, float alpha, float (&f)[8]) {
  if (in.dense) {
    switch (in.dtype) {
      case DType::F32: load8<DType::F32, VEC>(in.dense, g, n, f); break;
      case DType::F16: load8<DType::F16, VEC>(in.dense, g, n, f); break;
      default: load8<DType::BF16, VEC>(in.dense, g, n, f); break;
    }
  } else {
    const uint32_t b = __ldg(in.bits + g);
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = ((b >> i) & 1u) ? alpha : -alpha;
  }
}

template <int K, bool VEC, bool CONSENSUS, bool MEAN>
__global__ void __launch_bounds__(kThreads) combine_kernel(const __grid_constant__ CombineArgs args, int64_t n,
                                                          float* __restrict__ out) {
  float alpha[K];
#pragma unroll
  for (int k = 0; k < K; ++k) alpha[k] = args.in[k].dense ? 0.0f : half_bits_to_float(args.in[k].alpha_fp16);
  const int64_t groups = (n + 7) / 8;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    float v[K][8];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      load_input<VEC>(args.in[k], g, n, alpha[k], v[k]);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[k][i] = __fmul_rn(v[k][i], args.in[k].weight);
    }
    const int64_t left = n - g * 8;
    const int cnt = left >= 8 ? 8 : static_cast<int>(left);
    float r[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      float num = 0.0f;
      if (CONSENSUS) {
        float total = 0.0f;
#pragma unroll
        for (int k = 0; k < K; ++k) total = __fadd_rn(total, v[k][i]);
        const bool pos = total >= 0.0f;
        float den = 0.0f;
#pragma unroll
        for (int k = 0; k < K; ++k) {
          const bool kept = pos ? v[k][i] > 0.0f : v[k][i] < 0.0f;
          if (kept) {
            num = __fadd_rn(num, v[k][i]);
            den = __fadd_rn(den, args.in[k].weight);
          }
        }
        if (MEAN) num = __fdiv_rn(num, den == 0.0f ? 1.0f : den);
      } else {
#pragma unroll
        for (int k = 0; k < K; ++k) num = __fadd_rn(num, v[k][i]);
        if (MEAN) num = __fdiv_rn(num, args.wsum);
      }
      r[i] = num;
    }
    store8<DType::F32, VEC>(out, g, cnt, r);
  }
}

// ---- launch helpers ----
int grid_for(int64_t items) { return cuda::grid_for(items, kThreads, 8); }  // 8 resident blocks of 256 per SM

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <DType D>
void launch_pack(const void* x, int64_t n, uint8_t* bits, float* partial, int grid, cudaStream_t s) {
  if (aligned16(x))
    pack_kernel<D, true><<<grid, kThreads, 0, s>>>(x, n, bits, partial);
  else
    pack_kernel<D, false><<<grid, kThreads, 0, s>>>(x, n, bits, partial);
}

template <DType D, bool ACC>
void launch_unpack(void* w, int64_t n, const uint8_t* bits, const __half* a, double scale, int grid, cudaStream_t s) {
  if (aligned16(w))
    unpack_kernel<D, true, ACC><<<grid, kThreads, 0, s>>>(w, n, bits, a, scale);
  else
    unpack_kernel<D, false, ACC><<<grid, kThreads, 0, s>>>(w, n, bits, a, scale);
}

template <int K, bool VEC>
void launch_combine_k(const CombineArgs& a, int64_t n, bool consensus, bool mean, float* out, int grid, cudaStream_t s) {
  if (consensus && mean)
    combine_kernel<K, VEC, true, true><<<grid, kThreads, 0, s>>>(a, n, out);
  else if (consensus)
    combine_kernel<K, VEC, true, false><<<grid, kThreads, 0, s>>>(a, n, out);
  else if (mean)
    combine_kernel<K, VEC, false, true><<<grid, kThreads, 0, s>>>(a, n, out);
  else
    combine_kernel<K, VEC, false, false><<<grid, kThreads, 0, s>>>(a, n, out);
}

template <bool VEC>
void launch_combine(const CombineArgs& a, int k, int64_t n, bool consensus, bool mean, float* out, int grid,
                    cudaStream_t s) {
  switch (k) {
    case 1: launch_combine_k<1, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 2: launch_combine_k<2, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 3: launch_combine_k<3, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 4: launch_combine_k<4, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 5: launch_combine_k<5, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 6: launch_combine_k<6, VEC>(a, n, consensus, mean, out, grid, s); break;
    case 7: launch_combine_k<7, VEC>(a, n, consensus, mean, out, grid, s); break;
    default: launch_combine_k<8, VEC>(a, n, consensus, mean, out, grid, s); break;
  }
}

}  // namespace

int64_t pack_signs_workspace_floats(int64_t n) { return grid_for((n + 7) / 8); }

cudaError_t pack_signs(const void* x, DType dtype, int64_t n, uint8_t* bits, void* alpha_fp16, float* workspace,
                       cudaStream_t stream) {
  const int grid = grid_for((n + 7) / 8);
  if (n > 0) {
    switch (dtype) {
      case DType::F32: launch_pack<DType::F32>(x, n, bits, workspace, grid, stream); break;
      case DType::F16: launch_pack<DType::F16>(x, n, bits, workspace, grid, stream); break;
      case DType::BF16: launch_pack<DType::BF16>(x, n, bits, workspace, grid, stream); break;
      default: return cudaErrorInvalidValue;
    }
  }
  alpha_kernel<<<1, kThreads, 0, stream>>>(workspace, n > 0 ? grid : 0, n, static_cast<__half*>(alpha_fp16));
  return cudaGetLastError();
}

cudaError_t unpack_add(void* w, DType dtype, int64_t n, const uint8_t* bits, const void* alpha_fp16, double scale,
                       bool accumulate, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int grid = grid_for((n + 7) / 8);
  const __half* a = static_cast<const __half*>(alpha_fp16);
  switch (dtype) {
    case DType::F32:
      accumulate ? launch_unpack<DType::F32, true>(w, n, bits, a, scale, grid, stream)
                 : launch_unpack<DType::F32, false>(w, n, bits, a, scale, grid, stream);
      break;
    case DType::F16:
      accumulate ? launch_unpack<DType::F16, true>(w, n, bits, a, scale, grid, stream)
                 : launch_unpack<DType::F16, false>(w, n, bits, a, scale, grid, stream);
      break;
    case DType::BF16:
      accumulate ? launch_unpack<DType::BF16, true>(w, n, bits, a, scale, grid, stream)
                 : launch_unpack<DType::BF16, false>(w, n, bits, a, scale, grid, stream);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t ties_combine(const CombineInput* inputs, int k, int64_t n, bool sign_consensus, bool disjoint_mean,
                         float* out, cudaStream_t stream) {
  if (k < 1 || k > kMaxCombine) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  CombineArgs a{};
  bool vec = aligned16(out);
  float wsum = 0.0f;
  for (int i = 0; i < k; ++i) {
    a.in[i] = inputs[i];
    wsum += inputs[i].weight;
    if (inputs[i].dense && !aligned16(inputs[i].dense)) vec = false;
    if (!inputs[i].dense && (!inputs[i].bits || !inputs[i].alpha_fp16)) return cudaErrorInvalidValue;
  }
  a.wsum = fabsf(wsum) < 1e-8f ? 1.0f : wsum;
  const int grid = grid_for((n + 7) / 8);
  if (vec)
    launch_combine<true>(a, k, n, sign_consensus, disjoint_mean, out, grid, stream);
  else
    launch_combine<false>(a, k, n, sign_consensus, disjoint_mean, out, grid, stream);
  return cudaGetLastError();
}

}  // namespace bm::kernels::cuda
