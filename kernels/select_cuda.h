// Raw-pointer CUDA launcher of the magnitude selection (no torch): the k-th
// largest |x| of an fp32 array and how many |x| are strictly larger. Exact:
// a 3-pass radix select over the bits of |x| (11 + 11 + 9 bits), histograms
// in shared memory with warp-aggregated atomics, all on `stream`.
// Semantics and the libtorch reference: kernels/select.hpp.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace bm::kernels::cuda {

// Device-side result (and running state) of a selection.
struct SelectResult {
  uint32_t thr_bits;              // bits of the k-th largest |x| (sign bit clear)
  uint32_t mask;                  // internal: digits fixed so far
  unsigned long long k_left;      // internal: rank still to find among the candidates
  unsigned long long greater;     // entries with |x| > threshold
};

// Bytes of device scratch (histogram) the selection needs.
int64_t select_workspace_bytes();

// x[n] fp32 (finite; |x| is compared, -0 == +0), 1 <= k <= n. Writes *result
// (device memory). workspace: select_workspace_bytes() of device memory.
cudaError_t kth_largest_abs(const float* x, int64_t n, int64_t k, void* workspace, SelectResult* result,
                            cudaStream_t stream);

}  // namespace bm::kernels::cuda
