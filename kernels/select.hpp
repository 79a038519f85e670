// Magnitude selection for TIES trimming (owner: kernels): the k-th largest
// |x| of a tensor and how many entries lie strictly above it. A TIES trim
// that keeps exactly k entries keeps every |x| > thr plus the first
// k - greater entries (in index order) with |x| == thr (merging/general.cpp).
// CUDA tensors go to the radix-select kernel (kernels/select.cu, exact), the
// rest to the libtorch/std reference (kernels/select_ref.cpp). Both return
// the same cut bit for bit.
#pragma once
#include <torch/types.h>

namespace bm::kernels {

struct MagnitudeCut {
  float thr = 0;        // the k-th largest |x|
  int64_t greater = 0;  // entries with |x| > thr (< k)
};

// x: floating, finite, any shape (flattened); 1 <= k <= numel.
// Throws bm::Error naming "kth_largest_abs" on bad arguments.
MagnitudeCut kth_largest_abs(const torch::Tensor& x, int64_t k);

}  // namespace bm::kernels
