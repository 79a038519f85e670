// Launch helper shared by the .cu files of kernels/ (no torch headers).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace bm::kernels::cuda {

// SMs of the current device (read once; 132 = H100 if the query fails).
inline int sm_count() {
  static int sms = 0;
  if (sms == 0) {
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (sms <= 0) sms = 132;
  }
  return sms;
}

// Blocks for a grid-stride kernel over `items` work items of `threads` per
// block: one item per thread, capped at `blocks_per_sm` resident blocks per SM.
inline int grid_for(int64_t items, int threads, int blocks_per_sm) {
  const int64_t want = (items + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * blocks_per_sm;
  return static_cast<int>(want < 1 ? 1 : (want < cap ? want : cap));
}

}  // namespace bm::kernels::cuda
