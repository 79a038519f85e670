// Exact k-th largest |x| by radix select (no torch). Keys are the bits of
// |x| (sign cleared): for finite floats their unsigned order is the order of
// |x|. Three passes fix 11, 11 and 9 bits of the key from the top; each pass
// histograms the candidates (keys matching the digits fixed so far) and a
// one-thread pick walks the bins from the largest down until k is reached.
// The state stays on the device: no host round trip between passes.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/select_cuda.h"

namespace bm::kernels::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxBins = 2048;

__device__ __forceinline__ void count_key(uint32_t key, bool valid, uint32_t prefix, uint32_t mask, int shift,
                                          uint32_t bin_mask, unsigned int* hist) {
  const bool take = valid && (key & mask) == prefix;
  const unsigned active = __ballot_sync(0xffffffffu, take);
  if (!take) return;
  const uint32_t bin = (key >> shift) & bin_mask;
  // Warp-aggregated: one shared atomic per distinct bin in the warp (values
  // of one tensor crowd into a few exponent bins).
  const unsigned peers = __match_any_sync(active, bin);
  if ((threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&hist[bin], static_cast<unsigned>(__popc(peers)));
}

__global__ void __launch_bounds__(kThreads) hist_kernel(const float* __restrict__ x, int64_t n,
                                                       const SelectResult* __restrict__ st, int shift, int bins,
                                                       unsigned long long* __restrict__ ghist, bool vec) {
  __shared__ unsigned int hist[kMaxBins];
  for (int i = threadIdx.x; i < bins; i += blockDim.x) hist[i] = 0;
  __syncthreads();
  const uint32_t prefix = st->thr_bits, mask = st->mask;
  const uint32_t bin_mask = static_cast<uint32_t>(bins - 1);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    // float4 loads; every thread of a warp runs the same number of
    // iterations (the loop bound is rounded up to whole warps).
    const int64_t quads = n / 4;
    const int64_t rounds = (quads + stride - 1) / stride;
    for (int64_t r = 0; r < rounds; ++r) {
      const int64_t q = tid + r * stride;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      const bool ok = q < quads;
      if (ok) v = reinterpret_cast<const float4*>(x)[q];
      count_key(__float_as_uint(v.x) & 0x7fffffffu, ok, prefix, mask, shift, bin_mask, hist);
      count_key(__float_as_uint(v.y) & 0x7fffffffu, ok, prefix, mask, shift, bin_mask, hist);
      count_key(__float_as_uint(v.z) & 0x7fffffffu, ok, prefix, mask, shift, bin_mask, hist);
      count_key(__float_as_uint(v.w) & 0x7fffffffu, ok, prefix, mask, shift, bin_mask, hist);
    }
    if (blockIdx.x == 0 && threadIdx.x < 32) {  // the tail (< 4 entries), one warp
      const int64_t i = quads * 4 + threadIdx.x;
      const bool ok = threadIdx.x < 4 && i < n;
      count_key(ok ? __float_as_uint(x[i]) & 0x7fffffffu : 0u, ok, prefix, mask, shift, bin_mask, hist);
    }
  } else {
    const int64_t rounds = (n + stride - 1) / stride;
    for (int64_t r = 0; r < rounds; ++r) {
      const int64_t i = tid + r * stride;
      const bool ok = i < n;
      count_key(ok ? __float_as_uint(x[i]) & 0x7fffffffu : 0u, ok, prefix, mask, shift, bin_mask, hist);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += blockDim.x)
    if (hist[i]) atomicAdd(&ghist[i], static_cast<unsigned long long>(hist[i]));
}

// One thread: the bin holding the k_left-th largest candidate; fixes that
// digit, counts the candidates above it as greater, clears the histogram.
__global__ void pick_kernel(unsigned long long* ghist, int shift, int bins, SelectResult* st) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  unsigned long long k = st->k_left, above = 0;
  int b = bins - 1;
  for (; b > 0; --b) {
    const unsigned long long c = ghist[b];
    if (above + c >= k) break;
    above += c;
  }
  st->greater += above;
  st->k_left = k - above;
  st->thr_bits |= static_cast<uint32_t>(b) << shift;
  st->mask |= static_cast<uint32_t>(bins - 1) << shift;
  for (int i = 0; i < bins; ++i) ghist[i] = 0;
}

__global__ void init_kernel(SelectResult* st, unsigned long long k, unsigned long long* ghist) {
  if (threadIdx.x == 0) {
    st->thr_bits = 0;
    st->mask = 0;
    st->k_left = k;
    st->greater = 0;
  }
  for (int i = threadIdx.x; i < kMaxBins; i += blockDim.x) ghist[i] = 0;
}

int grid_for(int64_t items) { return cuda::grid_for(items, kThreads, 4); }  // 4 resident blocks of 512 per SM

}  // namespace

int64_t select_workspace_bytes() { return static_cast<int64_t>(kMaxBins) * sizeof(unsigned long long); }

cudaError_t kth_largest_abs(const float* x, int64_t n, int64_t k, void* workspace, SelectResult* result,
                            cudaStream_t stream) {
  if (n <= 0 || k < 1 || k > n || !x || !workspace || !result) return cudaErrorInvalidValue;
  auto* ghist = static_cast<unsigned long long*>(workspace);
  init_kernel<<<1, 256, 0, stream>>>(result, static_cast<unsigned long long>(k), ghist);
  const bool vec = (reinterpret_cast<uintptr_t>(x) & 15u) == 0;
  const int grid = grid_for(vec ? (n + 3) / 4 : n);
  // Key bits 30..20, 19..9, 8..0 (bit 31, the sign, is cleared).
  const int shifts[3] = {20, 9, 0};
  const int bins[3] = {2048, 2048, 512};
  for (int p = 0; p < 3; ++p) {
    hist_kernel<<<grid, kThreads, 0, stream>>>(x, n, result, shifts[p], bins[p], ghist, vec);
    pick_kernel<<<1, 32, 0, stream>>>(ghist, shifts[p], bins[p], result);
  }
  return cudaGetLastError();
}

}  // namespace bm::kernels::cuda
