#include "merging/packed_format.hpp"

#include <sys/stat.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/safetensors.hpp"

namespace bm::merging {

namespace {
int64_t numel_of(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}
torch::Tensor cpu_contig(const torch::Tensor& t) { return t.device().is_cpu() ? t.contiguous() : t.cpu().contiguous(); }
}  // namespace

CompressSummary write_packed_task_vector(const Checkpoint& base, const Checkpoint& expert, Compression compression,
                                         const std::string& expert_name, const std::string& out_path,
                                         const std::map<std::string, float>* scales) {
  const Position position = compression.position;
  const bool ternary = compression.scheme == Scheme::Ternary;
  const bool bitdelta = compression.scheme == Scheme::BitDelta;
  if (bitdelta && !scales)
    fail(out_path, "scheme bitdelta needs the fitted scales (harness/train/bitdelta.hpp); run `bitmerge compress "
                   "--position POSITION:bitdelta --calib FILE`");
  Compression signs = compression;
  if (bitdelta) signs.scheme = Scheme::Sign;  // the signs of the paper's scheme, alphas from `scales`
  auto src = expert_from_checkpoint(expert_name, std::shared_ptr<Checkpoint>(const_cast<Checkpoint*>(&expert),
                                                                             [](Checkpoint*) {}),
                                    signs);
  Compatibility compat = check_compatible(base, {src.get()});
  CompressSummary sum;
  sum.notes = compat.lines();

  nlohmann::json shapes = nlohmann::json::object();
  struct Plan {
    std::string name;
    bool packed;
    std::vector<int64_t> shape;
    DType dtype;
  };
  std::vector<Plan> plan;
  for (const auto& n : base.names()) {
    TensorInfo bi = base.info(n);
    std::vector<int64_t> es = expert.info(n).shape;
    bool packed = compressed_at(position, n, static_cast<int64_t>(bi.shape.size())) && es == bi.shape;
    auto shape = bi.shape;
    if (!shape.empty()) shape[0] = std::min(bi.shape[0], es[0]);
    if (packed) shapes[n] = bi.shape;
    plan.push_back({n, packed, shape, bi.dtype});
  }
  std::map<std::string, std::string> meta{{"format", kPackedFormat},
                                          {"format_version", kPackedVersion},
                                          {"position", position_name(position)},
                                          {"expert", expert_name},
                                          {"expert_dir", expert.dir()},
                                          {"expert_fingerprint", expert.fingerprint()},
                                          {"base_fingerprint", base.fingerprint()},
                                          {"shapes", shapes.dump()}};
  if (ternary) {
    meta["scheme"] = scheme_name(Scheme::Ternary);
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", compression.density);
    meta["density"] = b;
  }
  if (bitdelta) {
    meta["scheme"] = scheme_name(Scheme::BitDelta);
    for (auto& p : plan)
      if (p.packed && !scales->count(p.name))
        fail(out_path + ": " + p.name, "no fitted bitdelta scale for this matrix; fit the scales at the same position");
  }
  SafetensorsWriter w(out_path, meta);
  for (auto& p : plan) {
    if (p.packed && ternary) {
      w.declare(p.name + ".codes", DType::U8, {(numel_of(p.shape) + 3) / 4});
      w.declare(p.name + ".alpha", DType::F16, {});
      ++sum.packed_tensors;
    } else if (p.packed) {
      w.declare(p.name + ".signs", DType::U8, {(numel_of(p.shape) + 7) / 8});
      w.declare(p.name + ".alpha", DType::F16, {});
      ++sum.packed_tensors;
    } else {
      w.declare(p.name, p.dtype, p.shape);
      ++sum.dense_tensors;
    }
  }
  for (auto& p : plan) {
    auto b = base.get(p.name);
    auto bf = b.to(torch::kFloat32);
    Delta d = src->delta(p.name, bf);
    release_pages(b);
    if (p.packed && ternary) {
      auto t = pack_ternary(d.dense);
      w.write(p.name + ".codes", t.codes.data_ptr(), t.codes.numel());
      w.write(p.name + ".alpha", t.alpha.data_ptr(), 2);
    } else if (p.packed) {
      if (!d.is_packed) fail(p.name, "internal: expected a packed delta");
      auto bits = cpu_contig(d.packed.bits);
      auto alpha = bitdelta ? torch::full({}, scales->at(p.name), torch::kFloat32).to(torch::kFloat16)
                            : cpu_contig(d.packed.alpha.to(torch::kFloat16).reshape({}));
      w.write(p.name + ".signs", bits.data_ptr(), bits.numel());
      w.write(p.name + ".alpha", alpha.data_ptr(), 2);
    } else {
      auto t = cpu_contig(d.dense.to(to_torch_dtype(p.dtype)));
      w.write(p.name, t.data_ptr(), t.numel() * t.element_size());
    }
  }
  w.finish();
  struct stat st {};
  if (stat(out_path.c_str(), &st) == 0) sum.file_bytes = static_cast<uint64_t>(st.st_size);
  return sum;
}

namespace {
class PackedExpert : public ExpertSource {
 public:
  PackedExpert(const std::string& path, const Checkpoint& base, const std::string& name) : file_(path) {
    const auto& m = file_.metadata();
    auto get = [&](const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? std::string() : it->second;
    };
    if (get("format") != kPackedFormat)
      fail(path, "not a bitmerge packed task vector (metadata 'format' is '" + get("format") +
                     "'); write one with `bitmerge compress`");
    if (get("format_version") != kPackedVersion)
      fail(path, "packed task vector format version '" + get("format_version") + "' is not supported (this build reads " +
                     kPackedVersion + "); re-run `bitmerge compress`");
    if (get("base_fingerprint") != base.fingerprint())
      fail(path, "task vector was made for another base (fingerprint " + get("base_fingerprint").substr(0, 12) +
                     ", base " + base.dir() + " is " + base.fingerprint().substr(0, 12) +
                     "); compress it again against this base");
    pos_ = parse_position(get("position"), path + ": metadata position");
    comp_ = Compression(pos_);
    if (!get("scheme").empty()) {
      if (get("scheme") == scheme_name(Scheme::BitDelta)) {
        comp_.scheme = Scheme::BitDelta;  // stored and read as sign (fitted alphas)
      } else if (get("scheme") != scheme_name(Scheme::Ternary)) {
        fail(path, "unknown compression scheme '" + get("scheme") +
                       "' in the metadata; this build reads sign, ternary and bitdelta");
      } else {
        comp_.scheme = Scheme::Ternary;
        char* end = nullptr;
        std::string dv = get("density");
        comp_.density = std::strtod(dv.c_str(), &end);
        if (dv.empty() || *end != '\0' || !(comp_.density > 0 && comp_.density <= 1))
          fail(path, "metadata density '" + dv + "' is not in (0, 1]; the file is corrupt");
      }
    }
    const bool ternary = comp_.scheme == Scheme::Ternary;
    const std::string bits_key = ternary ? ".codes" : ".signs";
    name_ = name.empty() ? get("expert") : name;
    path_ = path;
    nlohmann::json shapes;
    try {
      shapes = nlohmann::json::parse(get("shapes"));
    } catch (const std::exception&) {
      fail(path, "metadata 'shapes' is not valid JSON; the file is corrupt, re-run `bitmerge compress`");
    }
    std::set<std::string> used;
    for (const auto& n : base.names()) {
      auto bs = base.info(n).shape;
      if (shapes.contains(n)) {
        auto shape = shapes[n].get<std::vector<int64_t>>();
        const TensorInfo* s = file_.find(n + bits_key);
        const TensorInfo* a = file_.find(n + ".alpha");
        if (!s || !a) fail(path + ": " + n, "packed tensor lacks " + bits_key + " or .alpha; the file is corrupt");
        if (shape != bs) fail(path + ": " + n, "packed shape " + shape_str(shape) + " is not the base's " + shape_str(bs));
        const int64_t per_byte = ternary ? 4 : 8;
        if (s->dtype != DType::U8 || s->numel() != (numel_of(shape) + per_byte - 1) / per_byte)
          fail(path + ": " + n + bits_key, "expected U8 [" + std::to_string((numel_of(shape) + per_byte - 1) / per_byte) +
                                               "], found " + dtype_name(s->dtype) + " " + shape_str(s->shape) +
                                               "; the file is corrupt");
        if (a->dtype != DType::F16 || a->numel() != 1)
          fail(path + ": " + n + ".alpha", "expected one F16 value; the file is corrupt");
        used.insert(n + bits_key);
        used.insert(n + ".alpha");
        shapes_[n] = shape;
        packed_.insert(n);
      } else {
        const TensorInfo* t = file_.find(n);
        if (!t) fail(path + ": " + n, "tensor of the base is missing; the file is corrupt or for another model");
        bool rows_ok = !bs.empty() && t->shape.size() == bs.size() &&
                       std::equal(bs.begin() + 1, bs.end(), t->shape.begin() + 1) && t->shape[0] <= bs[0];
        if (t->shape != bs && !rows_ok)
          fail(path + ": " + n, "shape " + shape_str(t->shape) + " is not the base's " + shape_str(bs));
        used.insert(n);
        shapes_[n] = t->shape;
      }
      names_.push_back(n);
    }
    for (const auto& t : file_.tensors())
      if (!used.count(t.name)) fail(path + ": " + t.name, "unexpected tensor; the file is corrupt or foreign");
  }
  std::string path() const override { return path_; }
  Position position() const override { return pos_; }
  Compression compression() const override { return comp_; }
  std::vector<std::string> names() const override { return names_; }
  bool has(const std::string& t) const override { return shapes_.count(t) > 0; }
  std::vector<int64_t> shape(const std::string& t) const override { return shapes_.at(t); }
  Delta delta(const std::string& t, const torch::Tensor& base_f32) const override {
    Delta d;
    if (packed_.count(t) && comp_.scheme == Scheme::Ternary) {
      const TensorInfo& c = file_.at(t + ".codes");
      const TensorInfo& a = file_.at(t + ".alpha");
      TernaryCodes tc;
      tc.codes = torch::from_blob(const_cast<uint8_t*>(file_.data(c)), {c.numel()}, torch::kUInt8);
      tc.alpha = torch::from_blob(const_cast<uint8_t*>(file_.data(a)), {}, torch::kFloat16);
      if (!std::isfinite(tc.alpha.item<float>())) fail(path_ + ": " + t + ".alpha", "alpha is not finite; the file is corrupt");
      d.dense = unpack_ternary(tc, shapes_.at(t), base_f32.device(), path_ + ": " + t + ".codes");
      return d;
    }
    if (packed_.count(t)) {
      const TensorInfo& s = file_.at(t + ".signs");
      const TensorInfo& a = file_.at(t + ".alpha");
      d.is_packed = true;
      d.packed.shape = shapes_.at(t);
      auto dev = base_f32.device();
      d.packed.bits = torch::from_blob(const_cast<uint8_t*>(file_.data(s)), {s.numel()}, torch::kUInt8).to(dev, false, true);
      d.packed.alpha = torch::from_blob(const_cast<uint8_t*>(file_.data(a)), {}, torch::kFloat16).to(dev, false, true);
      if (!std::isfinite(d.packed.alpha.item<float>()))
        fail(path_ + ": " + t + ".alpha", "alpha is not finite; the file is corrupt");
      return d;
    }
    const TensorInfo& i = file_.at(t);
    auto view = torch::from_blob(const_cast<uint8_t*>(file_.data(i)), i.shape, to_torch_dtype(i.dtype));
    d.dense = view.to(base_f32.device(), false, true).to(torch::kFloat32);
    check_finite(d.dense, path_ + ": " + t);
    if (base_f32.dim() > 0 && d.dense.dim() > 0 && d.dense.size(0) > base_f32.size(0))
      d.dense = d.dense.narrow(0, 0, base_f32.size(0));
    return d;
  }

 private:
  SafetensorsFile file_;
  std::string path_;
  Position pos_ = Position::None;
  Compression comp_;
  std::vector<std::string> names_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::set<std::string> packed_;
};
}  // namespace

std::unique_ptr<ExpertSource> open_packed_task_vector(const std::string& path, const Checkpoint& base,
                                                      const std::string& name) {
  return std::make_unique<PackedExpert>(path, base, name);
}

bool is_packed_task_vector(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  try {
    SafetensorsFile f(path);
    auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kPackedFormat;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace bm::merging
