#include "kernels/select_ref.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

namespace bm::kernels::ref {

MagnitudeCut kth_largest_abs(const torch::Tensor& x, int64_t k) {
  auto a = x.detach().to(torch::kCPU).to(torch::kFloat32).reshape({-1}).abs().contiguous();
  const int64_t n = a.numel();
  float* p = a.data_ptr<float>();
  // The (n-k+1)-th smallest = the k-th largest (as torch::kthvalue(a, n-k+1)).
  const int64_t pos = n - k;
  std::nth_element(p, p + pos, p + n);
  MagnitudeCut c;
  c.thr = p[pos];
  for (int64_t i = pos + 1; i < n; ++i) c.greater += p[i] > c.thr;  // everything before pos is <= thr
  return c;
}

}  // namespace bm::kernels::ref
