#include "merging/routed_bank.hpp"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <algorithm>

#include "harness/core/error.hpp"
#include "harness/core/safetensors.hpp"
#include "merging/task_vector.hpp"

namespace bm::merging {

struct RoutedBank::Impl {
  std::unique_ptr<Merger> merger;
  const MethodInfo* method = nullptr;
  std::vector<std::string> experts;
  torch::Device dev{torch::kCPU};
  bool host = false;  // inputs in pinned host memory, uploaded per build
  bool routing = false;
  struct Slot {
    bool is_packed = false;
    kernels::Packed packed;  // compressed positions
    torch::Tensor stored;    // the expert's own tensor (dense positions)
    torch::Tensor dense;     // a dense delta read from a packed task-vector file (fp32)
  };
  struct Entry {
    torch::Tensor base;  // stored dtype; undefined for routing when every expert has the base's shape
    std::vector<Slot> slots;
  };
  std::map<std::string, Entry> entries;
  int64_t bytes = 0;

  torch::Tensor hold(const torch::Tensor& t) {
    torch::Tensor h;
    if (host) {
      h = torch::empty(t.sizes(), torch::TensorOptions().dtype(t.scalar_type()).pinned_memory(true));
      h.copy_(t);
    } else {
      h = t.to(dev, t.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
    }
    bytes += static_cast<int64_t>(h.numel()) * static_cast<int64_t>(h.element_size());
    return h;
  }
  torch::Tensor on_dev(const torch::Tensor& t) const { return t.device() == dev ? t : t.to(dev, /*non_blocking=*/true); }
};

namespace {
MergeSpec checked_spec(const MergeSpec& spec) {
  const MethodInfo& m = find_method(spec.method);
  if (m.kind != MethodKind::Routing && m.kind != MethodKind::OneBit)
    fail("--method " + spec.method, "a routed bank holds routing or onebit variants only");
  if (spec.experts.empty()) fail("--experts", "no experts given; write name=DIR[,name=DIR...]");
  MergeSpec s = spec;
  s.route = spec.experts.front().name;  // any route: the Merger validates it; the bank routes per build
  return s;
}
}  // namespace

RoutedBank::RoutedBank(const MergeSpec& spec, const std::string& place) : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.merger = std::make_unique<Merger>(checked_spec(spec));
  I.method = &I.merger->method();
  I.routing = I.method->kind == MethodKind::Routing;
  const Params& P = I.merger->params();
  if (P.has("trim") && P.s("trim") == "global")
    fail("--param trim=global", "a routed bank merges tensor by tensor; use trim=tensor or build the variant with `bitmerge merge`");
  for (auto& e : spec.experts) I.experts.push_back(e.name);
  if (spec.device == "cuda") I.dev = torch::Device(torch::kCUDA);
  if (place == "host") I.host = I.dev.is_cuda();
  else if (place != "device") fail("routed bank place '" + place + "'", "unknown; use device or host");

  const Checkpoint& base = I.merger->base_checkpoint();
  const auto& sources = I.merger->expert_sources();
  c10::InferenceMode guard;
  for (const auto& name : base.names()) {
    Impl::Entry en;
    auto b = base.get(name);  // CPU view of the mapping
    bool need_base = !I.routing;
    torch::Tensor bf_dev;  // fp32 base on the compute device, made when a delta must be formed now
    auto base_f32 = [&]() -> const torch::Tensor& {
      if (!bf_dev.defined()) bf_dev = b.to(I.dev, torch::kFloat32, false, /*copy=*/true);
      return bf_dev;
    };
    for (const auto& src : sources) {
      Impl::Slot sl;
      if (!src->has(name)) fail(src->path() + ": " + name, "tensor missing from expert '" + src->name() + "'");
      auto st = src->stored(name);
      const bool compressed = src->position() != Position::None && compressed_at(src->position(), name, b.dim());
      if (st.defined() && (!compressed || I.routing)) {
        sl.stored = I.hold(st);
        if (st.sizes() != b.sizes()) need_base = true;  // vocab rows differ: the method merges the common rows
      } else {
        Delta d = st.defined() ? src->delta_with(name, base_f32(), st.to(I.dev)) : src->delta(name, b.to(torch::kFloat32)).to(I.dev);
        if (d.is_packed) {
          sl.is_packed = true;
          sl.packed.shape = d.packed.shape;
          sl.packed.bits = I.hold(d.packed.bits);
          sl.packed.alpha = I.hold(d.packed.alpha);
        } else {
          sl.dense = I.hold(d.dense);
        }
      }
      en.slots.push_back(std::move(sl));
    }
    if (need_base) en.base = I.hold(b);
    I.entries.emplace(name, std::move(en));
  }
  if (I.dev.is_cuda()) torch::cuda::synchronize();
}

RoutedBank::~RoutedBank() = default;
const std::vector<std::string>& RoutedBank::names() const { return impl_->merger->names(); }
const std::vector<std::string>& RoutedBank::experts() const { return impl_->experts; }
const ModelConfig& RoutedBank::config() const { return impl_->merger->config(); }
std::string RoutedBank::tokenizer_dir() const { return impl_->merger->tokenizer_dir(); }
std::vector<std::string> RoutedBank::notes() const { return impl_->merger->notes(); }
int64_t RoutedBank::bytes() const { return impl_->bytes; }

torch::Tensor RoutedBank::tensor(const std::string& expert, const std::string& name) const {
  const Impl& I = *impl_;
  auto it = std::find(I.experts.begin(), I.experts.end(), expert);
  if (it == I.experts.end()) fail("route " + expert, "no expert of that name" + did_you_mean(expert, I.experts));
  const int route = static_cast<int>(it - I.experts.begin());
  auto en = I.entries.find(name);
  if (en == I.entries.end()) fail(name, "not a tensor of the base model");
  const auto& E = en->second;
  c10::InferenceMode guard;
  // Routing with matching shapes: the routed expert's own tensor, exactly.
  if (I.routing && !E.base.defined()) return I.on_dev(E.slots[route].stored).to(torch::kFloat32);
  auto bf = I.on_dev(E.base).to(torch::kFloat32);
  if (bf.data_ptr() == E.base.data_ptr()) bf = bf.clone();
  const auto& sources = I.merger->expert_sources();
  TensorJob job;
  job.name = name;
  job.role = classify_tensor(name).role;
  for (size_t k = 0; k < E.slots.size(); ++k) {
    const auto& s = E.slots[k];
    if (I.routing && static_cast<int>(k) != route) {
      job.deltas.emplace_back();
      continue;
    }
    Delta d;
    if (s.is_packed) {
      d.is_packed = true;
      d.packed = {I.on_dev(s.packed.bits), I.on_dev(s.packed.alpha), s.packed.shape};
    } else if (s.stored.defined()) {
      d = sources[k]->delta_with(name, bf, I.on_dev(s.stored));
    } else {
      d.dense = I.on_dev(s.dense);
    }
    job.deltas.push_back(std::move(d));
  }
  job.base = bf;
  job.expert_names = I.experts;
  job.params = &I.merger->params();
  job.route = route;
  return I.method->merge(job);
}

void RoutedBank::materialize(const std::string& expert, std::map<std::string, torch::Tensor>& weights) const {
  c10::InferenceMode guard;
  for (const auto& name : names()) {
    auto w = weights.find(name);
    if (w == weights.end()) continue;  // tensors the forward does not use (e.g. rotary buffers)
    auto t = tensor(expert, name);
    if (t.sizes() != w->second.sizes())
      fail(name, "routed bank tensor has shape " + shape_str(std::vector<int64_t>(t.sizes().begin(), t.sizes().end())) +
                     " but the live model's is " +
                     shape_str(std::vector<int64_t>(w->second.sizes().begin(), w->second.sizes().end())));
    w->second.copy_(t);
  }
}

int64_t routed_bank_bytes(const MergeSpec& spec) {
  Merger m(checked_spec(spec));
  const bool routing = m.method().kind == MethodKind::Routing;
  const Checkpoint& base = m.base_checkpoint();
  int64_t total = 0;
  for (const auto& name : base.names()) {
    auto info = base.info(name);
    const int64_t esz = static_cast<int64_t>(dtype_size(info.dtype));
    bool need_base = !routing;
    for (const auto& src : m.expert_sources()) {
      auto shape = src->shape(name);
      int64_t n = 1;
      for (auto d : shape) n *= d;
      const bool compressed = src->position() != Position::None && compressed_at(src->position(), name, static_cast<int64_t>(shape.size()));
      if (compressed && !routing && src->compression().scheme == Scheme::Ternary) total += n * 4;  // dense fp32 in memory
      else if (compressed && !routing) total += (n + 7) / 8 + 2;
      else total += n * esz;
      if (shape != info.shape) need_base = true;
    }
    if (need_base) total += info.numel() * esz;
  }
  return total;
}

}  // namespace bm::merging
