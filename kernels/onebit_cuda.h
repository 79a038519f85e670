// Raw-pointer CUDA launchers of the 1-bit kernels (no torch). Each returns
// the launch's cudaError_t (cudaSuccess when queued); all work is on `stream`.
// Layout and arithmetic: kernels/onebit.hpp and kernels/onebit_ref.hpp.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace bm::kernels::cuda {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Floats of scratch pack_signs needs (per-block partial sums of |x|).
int64_t pack_signs_workspace_floats(int64_t n);

// One pass over x[n] (dtype): bits[ceil(n/8)] (bit e%8 of byte e/8 = x_e >= 0)
// and *alpha_fp16 = fp16(sum|x| / n). workspace: pack_signs_workspace_floats(n).
cudaError_t pack_signs(const void* x, DType dtype, int64_t n, uint8_t* bits, void* alpha_fp16, float* workspace,
                       cudaStream_t stream);

// accumulate: w[e] = dtype(float(w[e]) + c * s_e); else w[e] = dtype(c * s_e),
// with c = float(scale * float(*alpha_fp16)) and s_e = bit ? +1 : -1.
cudaError_t unpack_add(void* w, DType dtype, int64_t n, const uint8_t* bits, const void* alpha_fp16, double scale,
                       bool accumulate, cudaStream_t stream);

// One input of the fused TIES combine: dense (dense != nullptr, of `dtype`)
// or packed (bits + alpha_fp16 on the device).
struct CombineInput {
  const void* dense = nullptr;
  DType dtype = DType::F32;
  const uint8_t* bits = nullptr;
  const void* alpha_fp16 = nullptr;
  float weight = 1.0f;
};
constexpr int kMaxCombine = 8;

// out[n] (fp32) = TIES combine of k <= kMaxCombine inputs (see onebit_ref.hpp).
cudaError_t ties_combine(const CombineInput* inputs, int k, int64_t n, bool sign_consensus, bool disjoint_mean,
                         float* out, cudaStream_t stream);

}  // namespace bm::kernels::cuda
