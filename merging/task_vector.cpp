#include "merging/task_vector.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "harness/core/error.hpp"
#include "merging/general.hpp"


namespace bm::merging {

torch::Tensor Delta::to_dense() const {
  if (!is_packed) return dense;
  return kernels::unpack_signs(packed, torch::kFloat32);
}

int64_t Delta::rows() const {
  if (is_packed) return packed.shape.empty() ? 1 : packed.shape[0];
  return dense.dim() == 0 ? 1 : dense.size(0);
}

Delta Delta::to(const torch::Device& d) const {
  Delta o;
  o.is_packed = is_packed;
  if (is_packed) {
    o.packed.bits = packed.bits.to(d);
    o.packed.alpha = packed.alpha.to(d);
    o.packed.shape = packed.shape;
  } else {
    o.dense = dense.to(d);
  }
  return o;
}

torch::Tensor ternary_topk(const torch::Tensor& d, double density) {
  auto kept = trim_magnitude(d.to(torch::kFloat32), density);
  auto nz = (kept != 0).sum();
  auto alpha = torch::where(nz > 0, kept.abs().sum() / nz.clamp_min(1), torch::zeros({}, kept.options()));
  alpha = alpha.to(torch::kFloat16).to(torch::kFloat32);  // as stored
  return torch::sign(kept) * alpha;
}

TernaryCodes pack_ternary(const torch::Tensor& ternary) {
  auto flat = ternary.reshape({-1}).to(torch::kCPU, torch::kFloat32);
  int64_t n = flat.numel(), padded = (n + 3) / 4 * 4;
  auto code = ((flat > 0).to(torch::kUInt8) + (flat < 0).to(torch::kUInt8) * 2);
  if (padded != n) code = torch::cat({code, torch::zeros({padded - n}, code.options())});
  code = code.reshape({-1, 4});
  TernaryCodes t;
  // c0 | c1 << 2 | c2 << 4 | c3 << 6 (codes <= 2: no carries, fits uint8)
  t.codes = (code.select(1, 0) + code.select(1, 1) * 4 + code.select(1, 2) * 16 + code.select(1, 3) * 64).contiguous();
  // Every nonzero entry is +-alpha (already fp16-exact): alpha = max |entry|.
  t.alpha = (n ? flat.abs().max() : torch::zeros({})).to(torch::kFloat16).reshape({});
  return t;
}

torch::Tensor unpack_ternary(const TernaryCodes& t, const std::vector<int64_t>& shape, const torch::Device& device,
                             const std::string& where) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  auto b = t.codes.to(device).to(torch::kInt32);
  auto field = [&](int64_t div) { return torch::remainder(torch::div(b, div, "floor"), 4); };
  auto code = torch::stack({field(1), field(4), field(16), field(64)}, 1).reshape({-1}).narrow(0, 0, n);
  if ((code == 3).any().item<bool>()) fail(where, "invalid 2-bit code 3 in the ternary codes; the file is corrupt");
  auto alpha = t.alpha.to(device).to(torch::kFloat32);
  auto sign = (code == 1).to(torch::kFloat32) - (code == 2).to(torch::kFloat32);
  return (sign * alpha).reshape(shape);
}

bool compressed_at(Position p, const std::string& tensor, int64_t dim) {
  return dim == 2 && position_covers(p, classify_tensor(tensor).role);
}

static bool vocab_tensor(const std::string& name) {
  Role r = classify_tensor(name).role;
  return r == Role::Embed || r == Role::Head;
}

void check_finite(const torch::Tensor& t, const std::string& where) {
  auto bad = ~torch::isfinite(t);
  if (!bad.any().item<bool>()) return;
  int64_t flat = torch::nonzero(bad.flatten())[0][0].item<int64_t>();
  double v = t.flatten()[flat].item<double>();
  std::string idx;
  int64_t rem = flat;
  std::vector<int64_t> pos(t.dim());
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    pos[d] = rem % t.size(d);
    rem /= t.size(d);
  }
  for (size_t i = 0; i < pos.size(); ++i) idx += (i ? ", " : "") + std::to_string(pos[i]);
  fail(where, std::string("task vector has ") + (std::isnan(v) ? "NaN" : "Inf") + " at index [" + idx +
                  "]; the expert or base checkpoint holds non-finite weights, re-download or fix it");
}

torch::Tensor dense_delta(const torch::Tensor& base_f32, const torch::Tensor& expert, const std::string& where) {
  int64_t rows = base_f32.dim() == 0 ? 0 : std::min(base_f32.size(0), expert.size(0));
  torch::Tensor b = base_f32, e = expert;
  if (base_f32.dim() > 0 && (base_f32.size(0) != rows || expert.size(0) != rows)) {
    b = base_f32.narrow(0, 0, rows);
    e = expert.narrow(0, 0, rows);
  }
  auto d = e.to(torch::kFloat32) - b;
  check_finite(d, where);
  return d;
}

// Only for file-backed mappings (from /proc/self/maps): MADV_DONTNEED drops
// this process's mapping of those pages (RSS falls) while the page cache keeps
// them; on anonymous memory it would zero data, so it is never applied there.
void release_pages(const torch::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || t.numel() == 0) return;
  static const long page = sysconf(_SC_PAGESIZE);
  auto start = reinterpret_cast<uintptr_t>(t.data_ptr());
  auto end = start + static_cast<uintptr_t>(t.numel()) * t.element_size();
  uintptr_t a = (start + page - 1) / page * page, b = end / page * page;  // whole pages inside the view only
  if (b <= a) return;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    if (a < lo || b > hi) continue;
    auto slash = line.find('/');
    bool file_backed = slash != std::string::npos && line.find(" (deleted)") == std::string::npos;
    if (file_backed) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
    return;
  }
}

Delta ExpertSource::delta_rows(const std::string& tensor, const torch::Tensor&, int64_t) const {
  fail(path() + ": " + tensor, "internal: this task-vector source cannot be read by rows");
}

namespace {
class CheckpointExpert : public ExpertSource {
 public:
  CheckpointExpert(std::string name, std::shared_ptr<Checkpoint> c, Compression comp)
      : ckpt_(std::move(c)), pos_(comp.position), comp_(comp) {
    name_ = std::move(name);
  }
  std::string path() const override { return ckpt_->dir(); }
  Position position() const override { return pos_; }
  Compression compression() const override { return comp_; }
  std::vector<std::string> names() const override { return ckpt_->names(); }
  bool has(const std::string& t) const override { return ckpt_->has(t); }
  std::vector<int64_t> shape(const std::string& t) const override { return ckpt_->info(t).shape; }
  const ModelConfig* config() const override { return ckpt_->has_config() ? &ckpt_->config() : nullptr; }
  std::shared_ptr<Checkpoint> checkpoint() const override { return pos_ == Position::None ? ckpt_ : nullptr; }
  bool can_slice(const std::string& t) const override {
    auto sh = ckpt_->info(t).shape;
    return !sh.empty() && !compressed_at(pos_, t, static_cast<int64_t>(sh.size()));
  }
  Delta delta_rows(const std::string& t, const torch::Tensor& base_rows, int64_t row0) const override {
    auto e = ckpt_->get(t).narrow(0, row0, base_rows.size(0));
    Delta d;
    d.dense = e.to(base_rows.device()).to(torch::kFloat32) - base_rows;
    check_finite(d.dense, ckpt_->dir() + ": " + t + " (rows from " + std::to_string(row0) + ")");
    release_pages(e);
    return d;
  }
  Delta delta(const std::string& t, const torch::Tensor& base_f32) const override {
    auto e = ckpt_->get(t);
    // Raw dtype crosses to the device; the math happens there.
    Delta d = delta_with(t, base_f32, e.to(base_f32.device()));
    release_pages(e);
    return d;
  }
  torch::Tensor stored(const std::string& t) const override { return ckpt_->get(t); }
  Delta delta_with(const std::string& t, const torch::Tensor& base_f32, const torch::Tensor& e) const override {
    Delta d;
    d.dense = dense_delta(base_f32, e, ckpt_->dir() + ": " + t);
    if (compressed_at(pos_, t, d.dense.dim()) && d.dense.sizes() == base_f32.sizes()) {
      if (comp_.scheme == Scheme::Ternary) {
        d.dense = ternary_topk(d.dense, comp_.density);
      } else {
        d.packed = kernels::pack_signs(d.dense);
        d.is_packed = true;
        d.dense = torch::Tensor();
      }
    }
    return d;
  }

 private:
  std::shared_ptr<Checkpoint> ckpt_;
  Position pos_;
  Compression comp_;
};
}  // namespace

std::unique_ptr<ExpertSource> expert_from_checkpoint(const std::string& name, std::shared_ptr<Checkpoint> ckpt,
                                                     Compression compression) {
  if (compression.scheme == Scheme::BitDelta)
    fail(ckpt->dir(), "expert '" + name + "': scheme bitdelta is not computed on the fly (its scales are fitted to the "
                      "expert's logits); write a packed file with `bitmerge compress --position " +
                      compression_name(compression) + " --calib FILE` and use that file");
  return std::make_unique<CheckpointExpert>(name, std::move(ckpt), compression);
}

std::vector<std::string> Compatibility::lines() const {
  std::vector<std::string> out;
  for (auto& v : vocab)
    out.push_back("vocab size differs: expert '" + v.expert + "' " + v.tensor + " has " +
                  std::to_string(v.expert_rows) + " rows, base " + std::to_string(v.base_rows) + "; merged the " +
                  std::to_string(std::min(v.base_rows, v.expert_rows)) + " common rows" +
                  (v.expert_rows > v.base_rows
                       ? ", the expert's rows " + std::to_string(v.base_rows) + ".." + std::to_string(v.expert_rows - 1) +
                             " (added tokens such as [PAD]) are dropped: the merged model has the base's " +
                             std::to_string(v.base_rows) + " rows and the base's tokenizer"
                       : ", the base's other rows keep the base's values (as mergekit)"));
  return out;
}

Compatibility check_compatible(const Checkpoint& base, const std::vector<const ExpertSource*>& experts) {
  Compatibility out;
  std::set<std::string> base_names(base.names().begin(), base.names().end());
  for (const ExpertSource* e : experts) {
    const std::string where = "expert '" + e->name() + "' (" + e->path() + ")";
    const ModelConfig* ec = e->config();
    if (ec && base.has_config()) {
      const ModelConfig& bc = base.config();
      auto same = [&](const char* key, int64_t a, int64_t b) {
        if (a != b)
          fail(where + "/config.json", std::string(key) + " is " + std::to_string(b) + " but the base (" + base.dir() +
                                           ") has " + std::to_string(a) +
                                           "; experts must be fine-tuned from the same base model");
      };
      if (ec->model_type != bc.model_type)
        fail(where + "/config.json", "model_type '" + ec->model_type + "' differs from the base's '" + bc.model_type +
                                         "'; experts must share the base's architecture");
      same("hidden_size", bc.hidden_size, ec->hidden_size);
      same("intermediate_size", bc.intermediate_size, ec->intermediate_size);
      same("num_hidden_layers", bc.num_hidden_layers, ec->num_hidden_layers);
      same("num_attention_heads", bc.num_attention_heads, ec->num_attention_heads);
      same("num_key_value_heads", bc.num_key_value_heads, ec->num_key_value_heads);
    }
    for (const auto& n : base.names())
      if (!e->has(n))
        fail(where + ": " + n, "tensor of the base is missing in the expert; is this an expert of the same base model?");
    for (const auto& n : e->names())
      if (!base_names.count(n))
        fail(where + ": " + n, "tensor is not in the base (" + base.dir() +
                                   "); experts must have exactly the base's tensors");
    for (const auto& n : base.names()) {
      auto bs = base.info(n).shape, es = e->shape(n);
      if (bs == es) continue;
      bool rows_only = vocab_tensor(n) && bs.size() == es.size() && !bs.empty() &&
                       std::equal(bs.begin() + 1, bs.end(), es.begin() + 1);
      if (!rows_only)
        fail(where + ": " + n, "shape " + shape_str(es) + " differs from the base's " + shape_str(bs) +
                                   "; experts must be fine-tuned from the same base model");
      out.vocab.push_back({e->name(), n, bs[0], es[0]});
    }
  }
  return out;
}

}  // namespace bm::merging
