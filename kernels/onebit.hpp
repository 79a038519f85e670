// 1-bit task-vector kernels (owner: kernels). Torch wrappers: validate
// inputs, dispatch to CUDA (kernels/*.cu, raw pointers + stream) for CUDA
// tensors, else to the libtorch reference (kernels/*_ref.cpp), which is the
// CPU path and the tests' oracle.
//
// Packed layout (the on-disk format too): the tensor is flattened row-major;
// element e's sign lives in byte e/8, bit e%8 (LSB first); bit = 1 means
// delta >= 0, so sign(0) = +1 (as BitDelta). Bytes = ceil(numel/8), uint8.
// alpha = mean(|delta|) computed in fp32, stored fp16.
// bits and alpha live on the input's device. The exact arithmetic (rounding,
// TIES normalisation edge cases, following mergekit) is in kernels/onebit_ref.hpp.
#pragma once
#include <torch/types.h>

#include <vector>

namespace bm::kernels {

struct Packed {
  torch::Tensor bits;   // uint8 [ceil(numel/8)]
  torch::Tensor alpha;  // fp16 scalar
  std::vector<int64_t> shape;
};

// One pass: signs -> bits and sum|delta| -> alpha.
Packed pack_signs(const torch::Tensor& delta);
// alpha * sign as a tensor of `shape` in `dtype`.
torch::Tensor unpack_signs(const Packed& p, torch::Dtype dtype);
// w += scale * alpha * sign, in place (w: fp32/fp16/bf16, contiguous).
void add_packed_(torch::Tensor& w, const Packed& p, double scale = 1.0);

// One delta of a TIES combine: dense (any float dtype) or packed.
struct DeltaRef {
  torch::Tensor dense;  // defined => dense
  const Packed* packed = nullptr;
  double weight = 1.0;
};
struct CombineOptions {
  bool sign_consensus = true;  // TIES sign election (majority = sign of sum of w*delta, >=0 -> +)
  bool disjoint_mean = true;   // divide by the sum of the weights kept at each entry (0 stays 0)
};
// Returns the combined delta (fp32) of the given shape: the sum over deltas of
// w*delta where kept, normalised per options. Trimming (density) is done by
// the caller on dense deltas before.
torch::Tensor ties_combine(const std::vector<DeltaRef>& deltas, const std::vector<int64_t>& shape,
                           const CombineOptions& opts);

// True when this build has the CUDA kernels (BITMERGE_WITH_CUDA); CUDA tensors
// are otherwise handled by the libtorch reference (still on the GPU).
bool cuda_kernels_built();

}  // namespace bm::kernels
