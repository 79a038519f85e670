// Torch wrappers of the fused decode kernels: validate, then dispatch 16-bit
// CUDA tensors to the raw-pointer launchers (kernels/decode_cuda.h) and
// everything else to the libtorch references (the unfused composite ops).
#include "kernels/decode.hpp"

#include <ATen/ATen.h>

#include <limits>
#include <sstream>
#include <string>

#include "harness/core/error.hpp"

#ifdef BITMERGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/decode_cuda.h"
#endif

namespace bm::kernels {
namespace {

std::string desc(const torch::Tensor& t) {
  std::ostringstream o;
  o << c10::toString(t.scalar_type()) << t.sizes() << " on " << t.device();
  return o.str();
}

void need(bool ok, const char* where, const std::string& what) {
  if (!ok) bm::fail(where, what);
}

void check_rows_index(const torch::Tensor& t, int64_t rows, const torch::Tensor& like, const char* where,
                      const char* name) {
  need(t.defined() && t.scalar_type() == torch::kInt64 && t.dim() == 1 && t.size(0) == rows, where,
       std::string(name) + " must be int64 [" + std::to_string(rows) + "], got " +
           (t.defined() ? desc(t) : std::string("undefined")));
  need(t.device() == like.device(), where,
       std::string(name) + " is on " + c10::str(t.device()) + " but the data on " + c10::str(like.device()) +
           "; move it with .to()");
}

void check_cache(const torch::Tensor& c, int64_t rows, int64_t nkv, int64_t D, const torch::Tensor& like,
                 const char* where, const char* name) {
  need(c.defined() && c.dim() == 4 && c.size(0) >= rows && c.size(1) == nkv && c.size(3) == D, where,
       std::string(name) + " must be [>= " + std::to_string(rows) + ", " + std::to_string(nkv) + ", L, " +
           std::to_string(D) + "], got " + (c.defined() ? desc(c) : std::string("undefined")));
  need(c.scalar_type() == like.scalar_type() && c.device() == like.device(), where,
       std::string(name) + " is " + desc(c) + " but the activations are " + desc(like) + "; use one dtype and device");
}

#ifdef BITMERGE_WITH_CUDA
bool half_dtype(torch::ScalarType t, cuda::DType* out) {
  if (t == torch::kBFloat16) return *out = cuda::DType::BF16, true;
  if (t == torch::kFloat16) return *out = cuda::DType::F16, true;
  return false;
}
void check_cuda(cudaError_t e, const char* where) {
  if (e != cudaSuccess)
    bm::fail(where, std::string("CUDA kernel failed: ") + cudaGetErrorString(e) +
                        "; check the device (nvidia-smi) and rerun with CUDA_LAUNCH_BLOCKING=1");
}
#endif

torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rh = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rh * sin;
}

}  // namespace

namespace ref {

torch::Tensor add_rms_norm(torch::Tensor& x, const torch::Tensor& delta, const torch::Tensor& w, double eps) {
  if (delta.defined()) x.copy_(x + delta);
  auto h = x.to(torch::kFloat32);
  auto var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return w * h.to(x.scalar_type());
}

torch::Tensor rope_qkv_to_cache(const torch::Tensor& qkv, int64_t nh, int64_t nkv, int64_t D, const torch::Tensor& slot,
                                const torch::Tensor& start, const torch::Tensor& inv_freq, torch::Tensor& cache_k,
                                torch::Tensor& cache_v) {
  const int64_t rows = qkv.size(0);
  auto pos = (slot - start).to(torch::kFloat32);
  auto freqs = pos.unsqueeze(-1) * inv_freq.view({1, -1});
  auto emb = at::cat({freqs, freqs}, -1);
  auto cos = emb.cos().to(qkv.scalar_type()).unsqueeze(1), sin = emb.sin().to(qkv.scalar_type()).unsqueeze(1);
  auto q = rotate(qkv.narrow(1, 0, nh * D).view({rows, nh, D}), cos, sin);
  auto k = rotate(qkv.narrow(1, nh * D, nkv * D).view({rows, nkv, D}), cos, sin);
  auto v = qkv.narrow(1, (nh + nkv) * D, nkv * D).view({rows, nkv, D});
  auto idx = slot.view({rows, 1, 1, 1}).expand({rows, nkv, 1, D});
  cache_k.narrow(0, 0, rows).scatter_(2, idx, k.unsqueeze(2));
  cache_v.narrow(0, 0, rows).scatter_(2, idx, v.unsqueeze(2));
  return q;
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& slot, const torch::Tensor& start, int64_t S, int64_t window,
                               double scale) {
  const int64_t rows = q.size(0), nh = q.size(1), D = q.size(2), nkv = cache_k.size(1), rep = nh / nkv;
  auto k = cache_k.narrow(0, 0, rows).narrow(2, 0, S).to(torch::kFloat32);  // [rows, nkv, S, D]
  auto v = cache_v.narrow(0, 0, rows).narrow(2, 0, S).to(torch::kFloat32);
  auto qf = q.to(torch::kFloat32).view({rows, nkv, rep, D});
  auto sc = at::matmul(qf, k.transpose(2, 3)) * scale;  // [rows, nkv, rep, S]
  auto ar = torch::arange(S, torch::TensorOptions().dtype(torch::kInt64).device(q.device())).view({1, S});
  auto lo = start.view({rows, 1});
  if (window > 0) lo = at::maximum(lo, slot.view({rows, 1}) - (window - 1));
  auto ok = (ar >= lo) & (ar <= slot.view({rows, 1}));  // [rows, S]
  sc = sc.masked_fill(ok.logical_not().view({rows, 1, 1, S}), -std::numeric_limits<double>::infinity());
  auto p = at::softmax(sc, -1);
  return at::matmul(p, v).to(q.scalar_type()).reshape({rows, nh * D});
}

torch::Tensor silu_mul(const torch::Tensor& gu) {
  const int64_t I = gu.size(1) / 2;
  return at::silu(gu.narrow(1, 0, I)) * gu.narrow(1, I, I);
}

}  // namespace ref

bool decode_kernels_cover(int64_t D, int64_t rep, torch::Dtype dtype) {
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  return half_dtype(dtype, &dt) && cuda::decode_attention_supported(static_cast<int>(D), static_cast<int>(rep));
#else
  (void)D, (void)rep, (void)dtype;
  return false;
#endif
}

torch::Tensor add_rms_norm(torch::Tensor& x, const torch::Tensor& delta, const torch::Tensor& w, double eps) {
  const char* where = "add_rms_norm";
  need(x.defined() && x.dim() == 2, where, "x must be [rows, H], got " + (x.defined() ? desc(x) : std::string("undefined")));
  const int64_t rows = x.size(0), H = x.size(1);
  need(w.defined() && w.dim() == 1 && w.size(0) == H, where, "norm weight must be [" + std::to_string(H) + "], got " + desc(w));
  if (delta.defined())
    need(delta.sizes() == x.sizes() && delta.scalar_type() == x.scalar_type() && delta.device() == x.device(), where,
         "delta is " + desc(delta) + " but x is " + desc(x) + "; they must match");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (x.is_cuda() && half_dtype(x.scalar_type(), &dt) && w.scalar_type() == x.scalar_type() && x.is_contiguous() &&
      (!delta.defined() || delta.is_contiguous()) && w.is_contiguous()) {
    c10::cuda::CUDAGuard guard(x.device());
    auto out = torch::empty_like(x);
    check_cuda(cuda::add_rms_norm(x.data_ptr(), delta.defined() ? delta.data_ptr() : nullptr, w.data_ptr(),
                                  out.data_ptr(), rows, H, static_cast<float>(eps), dt,
                                  at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  return ref::add_rms_norm(x, delta, w, eps);
}

torch::Tensor rope_qkv_to_cache(const torch::Tensor& qkv, int64_t nh, int64_t nkv, int64_t D, const torch::Tensor& slot,
                                const torch::Tensor& start, const torch::Tensor& inv_freq, torch::Tensor& cache_k,
                                torch::Tensor& cache_v) {
  const char* where = "rope_qkv_to_cache";
  need(qkv.defined() && qkv.dim() == 2 && qkv.size(1) == (nh + 2 * nkv) * D && D % 2 == 0, where,
       "qkv must be [rows, (nh + 2 nkv) * D] = [rows, " + std::to_string((nh + 2 * nkv) * D) + "] with even D, got " +
           (qkv.defined() ? desc(qkv) : std::string("undefined")));
  const int64_t rows = qkv.size(0);
  check_rows_index(slot, rows, qkv, where, "slot");
  check_rows_index(start, rows, qkv, where, "start");
  need(inv_freq.defined() && inv_freq.numel() == D / 2 && inv_freq.scalar_type() == torch::kFloat32, where,
       "inv_freq must be fp32 [" + std::to_string(D / 2) + "]");
  check_cache(cache_k, rows, nkv, D, qkv, where, "cache_k");
  check_cache(cache_v, rows, nkv, D, qkv, where, "cache_v");
  need(cache_k.sizes() == cache_v.sizes(), where, "cache_k and cache_v differ in shape");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (qkv.is_cuda() && half_dtype(qkv.scalar_type(), &dt) && qkv.is_contiguous() && cache_k.is_contiguous() &&
      cache_v.is_contiguous() && slot.is_contiguous() && start.is_contiguous() && inv_freq.is_contiguous()) {
    c10::cuda::CUDAGuard guard(qkv.device());
    auto q = torch::empty({rows, nh, D}, qkv.options());
    check_cuda(cuda::rope_qkv_to_cache(qkv.data_ptr(), rows, static_cast<int>(nh), static_cast<int>(nkv),
                                       static_cast<int>(D), slot.data_ptr<int64_t>(), start.data_ptr<int64_t>(),
                                       inv_freq.data_ptr<float>(), q.data_ptr(), cache_k.data_ptr(), cache_v.data_ptr(),
                                       cache_k.size(2), dt, at::cuda::getCurrentCUDAStream()),
               where);
    return q;
  }
#endif
  return ref::rope_qkv_to_cache(qkv, nh, nkv, D, slot, start, inv_freq, cache_k, cache_v);
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& slot, const torch::Tensor& start, int64_t S, int64_t window,
                               double scale) {
  const char* where = "decode_attention";
  need(q.defined() && q.dim() == 3, where, "q must be [rows, nh, D], got " + (q.defined() ? desc(q) : std::string("undefined")));
  const int64_t rows = q.size(0), nh = q.size(1), D = q.size(2);
  need(cache_k.defined() && cache_k.dim() == 4, where, "cache_k must be [B, nkv, L, D]");
  const int64_t nkv = cache_k.size(1);
  need(nkv > 0 && nh % nkv == 0, where,
       "query heads " + std::to_string(nh) + " are not a multiple of the cache's kv heads " + std::to_string(nkv));
  check_cache(cache_k, rows, nkv, D, q, where, "cache_k");
  check_cache(cache_v, rows, nkv, D, q, where, "cache_v");
  need(S >= 1 && S <= cache_k.size(2), where,
       "S = " + std::to_string(S) + " outside the cache's 1.." + std::to_string(cache_k.size(2)) + " slots");
  check_rows_index(slot, rows, q, where, "slot");
  check_rows_index(start, rows, q, where, "start");
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (q.is_cuda() && half_dtype(q.scalar_type(), &dt) && q.is_contiguous() && cache_k.is_contiguous() &&
      cache_v.is_contiguous() && slot.is_contiguous() && start.is_contiguous() &&
      cuda::decode_attention_supported(static_cast<int>(D), static_cast<int>(nh / nkv))) {
    c10::cuda::CUDAGuard guard(q.device());
    const int splits = cuda::decode_attention_splits(rows, static_cast<int>(nkv), S, static_cast<int>(D),
                                                     static_cast<int>(nh / nkv));
    auto ws = torch::empty({cuda::decode_attention_workspace_floats(rows, static_cast<int>(nh), splits, static_cast<int>(D))},
                           q.options().dtype(torch::kFloat32));
    auto out = torch::empty({rows, nh * D}, q.options());
    check_cuda(cuda::decode_attention(q.data_ptr(), cache_k.data_ptr(), cache_v.data_ptr(), rows, static_cast<int>(nh),
                                      static_cast<int>(nkv), static_cast<int>(D), cache_k.size(2), S,
                                      slot.data_ptr<int64_t>(), start.data_ptr<int64_t>(), window,
                                      static_cast<float>(scale), splits, ws.data_ptr<float>(), out.data_ptr(), dt,
                                      at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  return ref::decode_attention(q, cache_k, cache_v, slot, start, S, window, scale);
}

torch::Tensor silu_mul(const torch::Tensor& gu) {
  const char* where = "silu_mul";
  need(gu.defined() && gu.dim() == 2 && gu.size(1) % 2 == 0, where,
       "gu must be [rows, 2I] (gate | up), got " + (gu.defined() ? desc(gu) : std::string("undefined")));
#ifdef BITMERGE_WITH_CUDA
  cuda::DType dt;
  if (gu.is_cuda() && half_dtype(gu.scalar_type(), &dt) && gu.is_contiguous()) {
    c10::cuda::CUDAGuard guard(gu.device());
    const int64_t I = gu.size(1) / 2;
    auto out = torch::empty({gu.size(0), I}, gu.options());
    check_cuda(cuda::silu_mul(gu.data_ptr(), gu.size(0), I, out.data_ptr(), dt, at::cuda::getCurrentCUDAStream()),
               where);
    return out;
  }
#endif
  return ref::silu_mul(gu);
}

}  // namespace bm::kernels
