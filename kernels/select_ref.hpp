// Reference of kernels/select.hpp (the CPU path and the CUDA tests' oracle):
// std::nth_element over |x| in fp32.
#pragma once
#include "kernels/select.hpp"

namespace bm::kernels::ref {

MagnitudeCut kth_largest_abs(const torch::Tensor& x, int64_t k);

}  // namespace bm::kernels::ref
