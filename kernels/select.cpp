// Torch wrapper of the magnitude selection: validate, dispatch CUDA tensors
// to kernels/select.cu, the rest to the reference.
#include "kernels/select.hpp"

#include <torch/torch.h>

#include <cstring>

#include "harness/core/error.hpp"
#include "kernels/select_ref.hpp"

#ifdef BITMERGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/select_cuda.h"
#endif

namespace bm::kernels {

MagnitudeCut kth_largest_abs(const torch::Tensor& x, int64_t k) {
  const char* where = "kth_largest_abs";
  if (!x.defined() || !at::isFloatingType(x.scalar_type()))
    bm::fail(where, "input must be a floating tensor (fp32, fp16 or bf16)");
  const int64_t n = x.numel();
  if (k < 1 || k > n)
    bm::fail(where, "k = " + std::to_string(k) + " is outside [1, " + std::to_string(n) +
                        "]; keep at least one and at most every entry");
#ifdef BITMERGE_WITH_CUDA
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    auto f = x.to(torch::kFloat32).contiguous();  // fp16/bf16 -> fp32 is exact
    auto opts = torch::TensorOptions().dtype(torch::kUInt8).device(x.device());
    auto ws = torch::empty({cuda::select_workspace_bytes()}, opts);
    auto res = torch::empty({static_cast<int64_t>(sizeof(cuda::SelectResult))}, opts);
    cudaError_t e = cuda::kth_largest_abs(f.data_ptr<float>(), n, k, ws.data_ptr(),
                                          reinterpret_cast<cuda::SelectResult*>(res.data_ptr()),
                                          at::cuda::getCurrentCUDAStream());
    if (e != cudaSuccess)
      bm::fail(where, std::string("CUDA kernel failed: ") + cudaGetErrorString(e) +
                          "; check the device (nvidia-smi) and rerun with CUDA_LAUNCH_BLOCKING=1");
    auto host = res.cpu();  // synchronises the stream
    cuda::SelectResult r;
    std::memcpy(&r, host.data_ptr(), sizeof r);
    MagnitudeCut c;
    std::memcpy(&c.thr, &r.thr_bits, sizeof c.thr);
    c.greater = static_cast<int64_t>(r.greater);
    return c;
  }
#endif
  return ref::kth_largest_abs(x, k);
}

}  // namespace bm::kernels
