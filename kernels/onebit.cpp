// Torch wrappers of the 1-bit kernels: validate, then dispatch CUDA tensors
// to the raw-pointer launchers (kernels/onebit_cuda.h) and everything else to
// the libtorch reference (kernels/onebit_ref.cpp).
#include "kernels/onebit.hpp"

#include <torch/torch.h>

#include <sstream>

#include "harness/core/error.hpp"
#include "kernels/onebit_ref.hpp"

#ifdef BITMERGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/onebit_cuda.h"
#endif

namespace bm::kernels {
namespace {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

std::string desc(const torch::Tensor& t) {
  std::ostringstream o;
  o << c10::toString(t.scalar_type()) << shape_str(t.sizes()) << " on " << t.device();
  return o.str();
}

int64_t numel_of(const std::vector<int64_t>& shape, const char* where) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) bm::fail(where, "negative dimension in shape " + shape_str(shape) + "; pass the tensor's sizes()");
    n *= d;
  }
  return n;
}

void check_float(const torch::Tensor& t, const char* where, const char* what) {
  if (!t.defined()) bm::fail(where, std::string(what) + " is an undefined tensor; pass a real tensor");
  if (!at::isFloatingType(t.scalar_type()))
    bm::fail(where, std::string(what) + " is " + desc(t) + " but must be a floating tensor (fp32, fp16 or bf16)");
}

// bits/alpha consistent with the shape; returns numel.
int64_t check_packed(const Packed& p, const char* where) {
  const int64_t n = numel_of(p.shape, where);
  if (!p.bits.defined() || !p.alpha.defined())
    bm::fail(where, "packed delta has undefined bits or alpha; create it with pack_signs()");
  if (p.bits.scalar_type() != torch::kUInt8 || p.bits.dim() != 1 || !p.bits.is_contiguous())
    bm::fail(where, "packed bits are " + desc(p.bits) + " but must be a contiguous 1-D uint8 tensor");
  if (p.bits.numel() != (n + 7) / 8)
    bm::fail(where, "packed bits hold " + std::to_string(p.bits.numel()) + " bytes but shape " + shape_str(p.shape) +
                        " needs ceil(" + std::to_string(n) + "/8) = " + std::to_string((n + 7) / 8) +
                        "; the bits and shape come from different tensors");
  if (p.alpha.numel() != 1 || !at::isFloatingType(p.alpha.scalar_type()))
    bm::fail(where, "packed alpha is " + desc(p.alpha) + " but must be one floating value (fp16)");
  if (p.alpha.device() != p.bits.device())
    bm::fail(where, "packed alpha is on " + c10::str(p.alpha.device()) + " but bits on " + c10::str(p.bits.device()) +
                        "; move both with .to(device)");
  return n;
}

void check_same_device(const torch::Tensor& a, const torch::Tensor& b, const char* where, const std::string& what) {
  if (a.device() != b.device())
    bm::fail(where, what + " are on " + c10::str(b.device()) + " but the tensor is on " + c10::str(a.device()) +
                        "; move them with .to(" + c10::str(a.device()) + ")");
}

#ifdef BITMERGE_WITH_CUDA
bool cuda_dtype(torch::ScalarType t, cuda::DType* out) {
  switch (t) {
    case torch::kFloat32: *out = cuda::DType::F32; return true;
    case torch::kFloat16: *out = cuda::DType::F16; return true;
    case torch::kBFloat16: *out = cuda::DType::BF16; return true;
    default: return false;
  }
}
void check_cuda(cudaError_t e, const char* where) {
  if (e != cudaSuccess)
    bm::fail(where, std::string("CUDA kernel failed: ") + cudaGetErrorString(e) +
                        "; check the device (nvidia-smi) and rerun with CUDA_LAUNCH_BLOCKING=1");
}
#endif

}  // namespace

bool cuda_kernels_built() {
#ifdef BITMERGE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

Packed pack_signs(const torch::Tensor& delta) {
  const char* where = "pack_signs";
  check_float(delta, where, "delta");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (delta.is_cuda() && cuda_dtype(delta.scalar_type(), &dt)) {
    c10::cuda::CUDAGuard guard(delta.device());
    auto x = delta.contiguous();
    const int64_t n = x.numel();
    Packed out;
    out.shape = delta.sizes().vec();
    auto u8 = torch::TensorOptions().dtype(torch::kUInt8).device(delta.device());
    out.bits = torch::empty({(n + 7) / 8}, u8);
    out.alpha = torch::empty({}, u8.dtype(torch::kFloat16));
    auto ws = torch::empty({cuda::pack_signs_workspace_floats(n)}, u8.dtype(torch::kFloat32));
    check_cuda(cuda::pack_signs(x.data_ptr(), dt, n, out.bits.data_ptr<uint8_t>(), out.alpha.data_ptr(),
                                ws.data_ptr<float>(), at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  return ref::pack_signs(delta);
}

torch::Tensor unpack_signs(const Packed& p, torch::Dtype dtype) {
  const char* where = "unpack_signs";
  const int64_t n = check_packed(p, where);
  if (!at::isFloatingType(dtype))
    bm::fail(where, std::string("requested dtype ") + c10::toString(dtype) + " is not floating; use fp32, fp16 or bf16");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (p.bits.is_cuda() && cuda_dtype(dtype, &dt)) {
    c10::cuda::CUDAGuard guard(p.bits.device());
    auto alpha = p.alpha.to(torch::kFloat16).contiguous();
    auto out = torch::empty(p.shape, torch::TensorOptions().dtype(dtype).device(p.bits.device()));
    check_cuda(cuda::unpack_add(out.data_ptr(), dt, n, p.bits.data_ptr<uint8_t>(), alpha.data_ptr(), 1.0,
                                /*accumulate=*/false, at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  return ref::unpack_signs(p, dtype);
}

void add_packed_(torch::Tensor& w, const Packed& p, double scale) {
  const char* where = "add_packed_";
  check_float(w, where, "weight");
  check_packed(p, where);
  if (w.sizes().vec() != p.shape)
    bm::fail(where, "weight is " + desc(w) + " but the packed delta has shape " + shape_str(p.shape) +
                        "; pack the delta of this very tensor");
  if (!w.is_contiguous()) bm::fail(where, "weight " + desc(w) + " is not contiguous; call .contiguous() first");
  check_same_device(w, p.bits, where, "packed bits");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (w.is_cuda() && cuda_dtype(w.scalar_type(), &dt)) {
    c10::cuda::CUDAGuard guard(w.device());
    auto alpha = p.alpha.to(torch::kFloat16).contiguous();
    check_cuda(cuda::unpack_add(w.data_ptr(), dt, w.numel(), p.bits.data_ptr<uint8_t>(), alpha.data_ptr(), scale,
                                /*accumulate=*/true, at::cuda::getCurrentCUDAStream()),
               where);
    return;
  }
#endif
  ref::add_packed_(w, p, scale);
}

torch::Tensor ties_combine(const std::vector<DeltaRef>& deltas, const std::vector<int64_t>& shape,
                           const CombineOptions& opts) {
  const char* where = "ties_combine";
  if (deltas.empty()) bm::fail(where, "no deltas given; pass at least one dense or packed delta");
  const int64_t n = numel_of(shape, where);
  torch::Device dev(torch::kCPU);
  for (size_t k = 0; k < deltas.size(); ++k) {
    const auto& d = deltas[k];
    const std::string name = "delta " + std::to_string(k);
    if (d.dense.defined() == (d.packed != nullptr))
      bm::fail(where, name + " must be either dense or packed (exactly one of .dense / .packed set)");
    torch::Device dk = d.dense.defined() ? d.dense.device() : d.packed->bits.device();
    if (k == 0) dev = dk;
    if (dk != dev)
      bm::fail(where, name + " is on " + c10::str(dk) + " but delta 0 is on " + c10::str(dev) +
                          "; move all deltas to one device");
    if (d.dense.defined()) {
      check_float(d.dense, where, name.c_str());
      if (d.dense.sizes().vec() != shape)
        bm::fail(where, name + " is " + desc(d.dense) + " but the combine shape is " + shape_str(shape) +
                            "; all deltas must be the same tensor of their models");
    } else {
      check_packed(*d.packed, where);
      if (d.packed->shape != shape)
        bm::fail(where, name + " is packed with shape " + shape_str(d.packed->shape) + " but the combine shape is " +
                            shape_str(shape) + "; all deltas must be the same tensor of their models");
    }
  }
#ifdef BITMERGE_WITH_CUDA
  bool use_cuda = dev.is_cuda() && deltas.size() <= static_cast<size_t>(cuda::kMaxCombine);
  cuda::DType dt;
  for (const auto& d : deltas)
    if (d.dense.defined() && !cuda_dtype(d.dense.scalar_type(), &dt)) use_cuda = false;
  if (use_cuda) {
    c10::cuda::CUDAGuard guard(dev);
    std::vector<torch::Tensor> keep;  // contiguous copies / fp16 alphas alive until the launch is queued
    std::vector<cuda::CombineInput> in(deltas.size());
    for (size_t k = 0; k < deltas.size(); ++k) {
      const auto& d = deltas[k];
      in[k].weight = static_cast<float>(d.weight);
      if (d.dense.defined()) {
        keep.push_back(d.dense.contiguous());
        cuda_dtype(d.dense.scalar_type(), &in[k].dtype);
        in[k].dense = keep.back().data_ptr();
      } else {
        keep.push_back(d.packed->alpha.to(torch::kFloat16).contiguous());
        in[k].bits = d.packed->bits.data_ptr<uint8_t>();
        in[k].alpha_fp16 = keep.back().data_ptr();
      }
    }
    auto out = torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
    check_cuda(cuda::ties_combine(in.data(), static_cast<int>(in.size()), n, opts.sign_consensus, opts.disjoint_mean,
                                  out.data_ptr<float>(), at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  (void)n;
  return ref::ties_combine(deltas, shape, opts);
}

}  // namespace bm::kernels
