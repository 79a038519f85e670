// libtorch reference of kernels/onebit.hpp (owner: kernels): the CPU path of
// the wrappers and the oracle of the CUDA tests. Inputs are assumed validated
// by the wrappers (kernels/onebit.cpp); these work on any device torch supports.
//
// Arithmetic contract shared with the CUDA kernels (so they agree bit for bit
// except alpha's reduction order):
//   alpha      = fp16( float( sum_e |x_e| (accumulated in fp64) / numel ) ), 0 when numel = 0
//   add_packed = w <- dtype( float(w) + c * s ),  c = float(scale * double(float(alpha))), s = +-1
//   ties       = v_k = float(w_k) * float(delta_k)   (packed: delta_k = float(alpha_k) * s)
//                S = sum_k v_k in k order (fp32); majority = S >= 0 ? + : -
//                kept_k = consensus ? (v_k != 0 && sign(v_k) == majority) : true
//                num = sum_{kept} v_k, den = sum_{kept} float(w_k)  (fp32, k order)
//                out = disjoint_mean ? num / den' : num, den' = 1 where den == 0 (consensus)
//                or |den| < 1e-8 (no consensus) -- mergekit's generalized task arithmetic.
#pragma once
#include "kernels/onebit.hpp"

namespace bm::kernels::ref {

Packed pack_signs(const torch::Tensor& delta);
torch::Tensor unpack_signs(const Packed& p, torch::Dtype dtype);
void add_packed_(torch::Tensor& w, const Packed& p, double scale);
torch::Tensor ties_combine(const std::vector<DeltaRef>& deltas, const std::vector<int64_t>& shape,
                           const CombineOptions& opts);

// Helpers shared with the tests: bits -> {+1,-1} fp32 of length numel, and
// the fp32 coefficient that add_packed_ multiplies the signs with.
torch::Tensor unpack_sign_pm1(const torch::Tensor& bits, int64_t numel);
float add_coefficient(const Packed& p, double scale);

}  // namespace bm::kernels::ref
