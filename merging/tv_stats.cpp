#include "merging/tv_stats.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/models/arch.hpp"
#include "merging/task_vector.hpp"

namespace bm::merging {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
int pairs_of(int k) { return k * (k - 1) / 2; }
}  // namespace

int pair_index(int i, int j, int k) {
  // Pairs before row i: (k-1) + (k-2) + ... + (k-i).
  return i * (2 * k - i - 1) / 2 + (j - i - 1);
}

TvAccum::TvAccum(int k)
    : sq(k, 0.0), abs_sum(k, 0.0), max_abs(k, 0.0), zeros(k, 0), dot(pairs_of(k), 0.0),
      both_nonzero(pairs_of(k), 0), agree(pairs_of(k), 0) {}

void TvAccum::add(const TvAccum& o) {
  if (o.experts() != experts()) throw std::logic_error("TvAccum::add: different expert counts");
  n += o.n;
  base_sq += o.base_sq;
  for (int k = 0; k < experts(); ++k) {
    sq[k] += o.sq[k];
    abs_sum[k] += o.abs_sum[k];
    max_abs[k] = std::max(max_abs[k], o.max_abs[k]);
    zeros[k] += o.zeros[k];
  }
  for (size_t p = 0; p < dot.size(); ++p) {
    dot[p] += o.dot[p];
    both_nonzero[p] += o.both_nonzero[p];
    agree[p] += o.agree[p];
  }
}

double TvAccum::rel_norm(int k) const { return base_sq > 0 ? std::sqrt(sq[k] / base_sq) : kNaN; }
double TvAccum::delta_norm(int k) const { return std::sqrt(sq[k]); }
double TvAccum::rms(int k) const { return n > 0 ? std::sqrt(sq[k] / static_cast<double>(n)) : kNaN; }
double TvAccum::mean_abs(int k) const { return n > 0 ? abs_sum[k] / static_cast<double>(n) : kNaN; }
double TvAccum::zero_frac(int k) const { return n > 0 ? static_cast<double>(zeros[k]) / static_cast<double>(n) : kNaN; }
double TvAccum::cosine(int i, int j) const {
  double den = std::sqrt(sq[i]) * std::sqrt(sq[j]);
  return den > 0 ? dot[pair_index(i, j, experts())] / den : kNaN;
}
double TvAccum::sign_agree(int i, int j) const {
  int p = pair_index(i, j, experts());
  return both_nonzero[p] > 0 ? static_cast<double>(agree[p]) / static_cast<double>(both_nonzero[p]) : kNaN;
}
double TvAccum::both_nonzero_frac(int i, int j) const {
  int p = pair_index(i, j, experts());
  return n > 0 ? static_cast<double>(both_nonzero[p]) / static_cast<double>(n) : kNaN;
}

namespace {

inline double as_double(double v) { return v; }
inline double as_double(float v) { return v; }
inline double as_double(c10::Half v) { return static_cast<float>(v); }
inline double as_double(c10::BFloat16 v) { return static_cast<float>(v); }

// One pass over n entries, values read in their stored type and widened to
// float64 (exact for fp16 / bf16 / fp32). K = 0: the expert count is taken
// at run time; K > 0: fixed, so the per-entry loops unroll.
template <typename T, int K>
void accumulate_impl(TvAccum& acc, const T* base, const std::vector<const T*>& ex, int64_t n) {
  const int k_n = K > 0 ? K : acc.experts();
  constexpr int kCap = 16;
  if (k_n > kCap) throw std::logic_error("tv_accumulate: at most 16 experts");
  const T* e[kCap];
  double d[kCap], sq[kCap] = {}, as[kCap] = {}, mx[kCap];
  int64_t zeros[kCap] = {};
  constexpr int kPairs = kCap * (kCap - 1) / 2;
  double dot[kPairs];
  int64_t both[kPairs], agree[kPairs];
  const int pairs = k_n * (k_n - 1) / 2;
  for (int p = 0; p < pairs; ++p) dot[p] = 0, both[p] = 0, agree[p] = 0;
  for (int k = 0; k < k_n; ++k) e[k] = ex[k], mx[k] = acc.max_abs[k];
  double bsq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double b = as_double(base[i]);
    bsq += b * b;
    for (int k = 0; k < k_n; ++k) {
      const double v = as_double(e[k][i]) - b;
      d[k] = v;
      sq[k] += v * v;
      const double a = std::fabs(v);
      as[k] += a;
      mx[k] = a > mx[k] ? a : mx[k];
      zeros[k] += (v == 0.0);
    }
    int p = 0;
    for (int a = 0; a < k_n; ++a)
      for (int c = a + 1; c < k_n; ++c, ++p) {
        dot[p] += d[a] * d[c];
        const bool nz = (d[a] != 0.0) & (d[c] != 0.0);
        both[p] += nz;
        agree[p] += nz & ((d[a] > 0.0) == (d[c] > 0.0));
      }
  }
  acc.n += n;
  acc.base_sq += bsq;
  for (int k = 0; k < k_n; ++k) {
    acc.sq[k] += sq[k];
    acc.abs_sum[k] += as[k];
    acc.max_abs[k] = mx[k];
    acc.zeros[k] += zeros[k];
  }
  for (int p = 0; p < pairs; ++p) {
    acc.dot[p] += dot[p];
    acc.both_nonzero[p] += both[p];
    acc.agree[p] += agree[p];
  }
}

template <typename T>
void accumulate_any(TvAccum& acc, const T* base, const std::vector<const T*>& ex, int64_t n) {
  if (static_cast<int>(ex.size()) != acc.experts())
    throw std::logic_error("tv_accumulate: expert count differs from the accumulator's");
  switch (acc.experts()) {
    case 1: return accumulate_impl<T, 1>(acc, base, ex, n);
    case 2: return accumulate_impl<T, 2>(acc, base, ex, n);
    case 3: return accumulate_impl<T, 3>(acc, base, ex, n);
    case 4: return accumulate_impl<T, 4>(acc, base, ex, n);
    default: return accumulate_impl<T, 0>(acc, base, ex, n);
  }
}

// Contiguous 1-D views of one dtype (the stored data, no copy): returns false
// when the dtypes differ or are not floating, and the caller converts.
bool accumulate_stored(TvAccum& acc, const torch::Tensor& base, const std::vector<torch::Tensor>& ex) {
  auto dt = base.scalar_type();
  for (auto& e : ex)
    if (e.scalar_type() != dt || !e.is_contiguous()) return false;
  if (!base.is_contiguous()) return false;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<const T*> ps;
    for (auto& e : ex) ps.push_back(e.data_ptr<T>());
    accumulate_any<T>(acc, base.data_ptr<T>(), ps, base.numel());
    return true;
  };
  switch (dt) {
    case torch::kFloat64: return run(double{});
    case torch::kFloat32: return run(float{});
    case torch::kFloat16: return run(c10::Half{});
    case torch::kBFloat16: return run(c10::BFloat16{});
    default: return false;
  }
}

void accumulate_tensors(TvAccum& acc, const torch::Tensor& base, const std::vector<torch::Tensor>& ex) {
  if (accumulate_stored(acc, base, ex)) return;
  auto b = base.to(torch::kFloat64).contiguous();
  std::vector<torch::Tensor> keep;
  for (auto& e : ex) keep.push_back(e.to(torch::kFloat64).contiguous());
  accumulate_stored(acc, b, keep);
}

}  // namespace

void tv_accumulate(TvAccum& acc, const double* base, const std::vector<const double*>& ex, int64_t n) {
  accumulate_any<double>(acc, base, ex, n);
}

TvAccum tv_accumulate(const torch::Tensor& base, const std::vector<torch::Tensor>& experts) {
  TvAccum acc(static_cast<int>(experts.size()));
  std::vector<torch::Tensor> ex;
  for (auto& e : experts) {
    if (e.sizes() != base.sizes()) throw std::invalid_argument("tv_accumulate: expert shape differs from the base's");
    ex.push_back(e.contiguous().reshape({-1}));
  }
  accumulate_tensors(acc, base.contiguous().reshape({-1}), ex);
  return acc;
}

std::string tv_position(const std::string& tensor) {
  Role r = classify_tensor(tensor).role;
  if (is_attention(r)) return "attention";
  if (is_mlp(r)) return "mlp";
  if (r == Role::Embed || r == Role::Head) return "embed_head";
  if (r == Role::Norm) return "norm";
  return "other";
}

const std::vector<std::string>& tv_positions() {
  static const std::vector<std::string> p{"attention", "mlp", "embed_head", "norm", "other"};
  return p;
}

const TvAccum& TvStatsReport::position(const std::string& name) const {
  for (auto& [n, a] : positions)
    if (n == name) return a;
  fail("task-vector statistics", "no position '" + name + "' in this report");
}

namespace {

std::string index_str(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> pos(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    pos[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s;
  for (size_t i = 0; i < pos.size(); ++i) s += (i ? ", " : "") + std::to_string(pos[i]);
  return "[" + s + "]";
}

std::vector<std::pair<std::string, TvAccum>> ordered(const std::map<std::string, TvAccum>& m,
                                                     const std::vector<std::string>& order) {
  std::vector<std::pair<std::string, TvAccum>> out;
  for (auto& k : order)
    if (auto it = m.find(k); it != m.end()) out.emplace_back(k, it->second);
  return out;
}

}  // namespace

TvStatsReport task_vector_stats(const std::shared_ptr<Checkpoint>& base, const std::vector<TvExpert>& experts,
                                const TvStatsOptions& opts) {
  if (experts.empty()) fail("task-vector statistics", "no experts given; pass --experts name=DIR[,name=DIR...]");
  std::set<std::string> seen;
  for (auto& e : experts)
    if (!seen.insert(e.name).second) fail("--experts " + e.name, "expert name given twice; give each expert once");
  std::vector<std::unique_ptr<ExpertSource>> sources;
  std::vector<const ExpertSource*> ptrs;
  for (auto& e : experts) {
    sources.push_back(expert_from_checkpoint(e.name, e.ckpt, Position::None));
    ptrs.push_back(sources.back().get());
  }
  Compatibility compat = check_compatible(*base, ptrs);  // names, shapes, config: one-line errors
  TvStatsReport r;
  r.base = base->dir();
  for (auto& e : experts) {
    r.experts.push_back(e.name);
    r.expert_paths.push_back(e.ckpt->dir());
  }
  std::map<std::string, int64_t> common_rows;  // vocab tensors: rows every model has
  for (auto& v : compat.vocab) {
    const std::string path = r.expert_paths[std::distance(r.experts.begin(),
                                                          std::find(r.experts.begin(), r.experts.end(), v.expert))];
    if (!opts.common_vocab)
      fail(path + ": " + v.tensor,
           "has " + std::to_string(v.expert_rows) + " rows but the base (" + base->dir() + ") has " +
               std::to_string(v.base_rows) +
               " (different vocabulary); pass --common-vocab to compare only the rows all models share");
    auto [it, fresh] = common_rows.emplace(v.tensor, v.base_rows);
    it->second = std::min(it->second, v.expert_rows);
    (void)fresh;
  }
  for (auto& [t, rows] : common_rows)
    r.notes.push_back(t + ": vocabularies differ; compared the first " + std::to_string(rows) +
                      " rows, which every model has");

  const int K = static_cast<int>(experts.size());
  const int64_t chunk = std::max<int64_t>(opts.chunk_elems, 1);
  std::map<std::string, TvAccum> by_pos, by_role;
  std::map<int, std::map<std::string, TvAccum>> by_layer;
  TvAccum total(K);
  const auto& names = base->names();
  if (opts.progress) opts.progress(0, names.size(), "");
  for (size_t ti = 0; ti < names.size(); ++ti) {
    const std::string& name = names[ti];
    torch::Tensor b = base->get(name);
    std::vector<torch::Tensor> es;
    for (auto& e : experts) es.push_back(e.ckpt->get(name));
    std::vector<int64_t> shape(b.sizes().begin(), b.sizes().end());
    if (auto it = common_rows.find(name); it != common_rows.end()) {
      shape[0] = it->second;
      b = b.narrow(0, 0, it->second);
      for (auto& e : es) e = e.narrow(0, 0, it->second);
    }
    b = b.reshape({-1});
    for (auto& e : es) e = e.reshape({-1});
    TvAccum t(K);
    const int64_t n = b.numel();
    for (int64_t off = 0; off < n; off += chunk) {
      const int64_t len = std::min(chunk, n - off);
      auto bv = b.narrow(0, off, len);
      std::vector<torch::Tensor> evs;
      for (auto& e : es) evs.push_back(e.narrow(0, off, len));
      TvAccum c(K);
      accumulate_tensors(c, bv, evs);
      for (int k = 0; k < K; ++k) {
        if (std::isfinite(c.sq[k])) continue;
        auto bd = bv.to(torch::kFloat64).contiguous();
        auto ed = evs[k].to(torch::kFloat64).contiguous();
        const double *bp = bd.data_ptr<double>(), *ep = ed.data_ptr<double>();
        for (int64_t i = 0; i < len; ++i) {
          double v = ep[i] - bp[i];
          if (std::isfinite(v)) continue;
          fail(r.expert_paths[k] + ": " + name,
               "task vector of expert '" + r.experts[k] + "' has " + (std::isnan(v) ? "NaN" : "Inf") + " at index " +
                   index_str(off + i, shape) +
                   "; the expert or base checkpoint holds non-finite weights, re-download or fix it");
        }
      }
      t.add(c);
      release_pages(bv);  // keep RSS near one chunk per model
      for (auto& e : evs) release_pages(e);
    }
    TensorRole role = classify_tensor(name);
    const std::string pos = tv_position(name);
    by_pos.try_emplace(pos, K).first->second.add(t);
    by_role.try_emplace(role_name(role.role), K).first->second.add(t);
    if (role.layer >= 0) by_layer[role.layer].try_emplace(pos, K).first->second.add(t);
    total.add(t);
    ++r.tensors;
    if (opts.progress) opts.progress(ti + 1, names.size(), name);
  }
  r.positions = ordered(by_pos, tv_positions());
  r.positions.emplace_back("total", total);
  std::vector<std::string> role_order;
  for (Role ro : {Role::Embed, Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp,
                  Role::MlpDown, Role::Norm, Role::Head, Role::Other})
    role_order.push_back(role_name(ro));
  r.roles = ordered(by_role, role_order);
  for (auto& [layer, m] : by_layer) r.layers[layer] = ordered(m, tv_positions());
  return r;
}

// ---- output ----

namespace {

std::string fmt(const char* f, double x) {
  if (!std::isfinite(x)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string label(const std::string& pos) {
  if (pos == "mlp") return "MLP";
  if (pos == "embed_head") return "embeddings/head";
  if (pos == "norm") return "norms";
  if (pos == "total") return "**total**";
  return pos;
}

std::string count_str(int64_t n) {
  if (n >= 1000000000) return fmt("%.2fG", n / 1e9);
  if (n >= 1000000) return fmt("%.2fM", n / 1e6);
  if (n >= 1000) return fmt("%.1fk", n / 1e3);
  return std::to_string(n);
}

nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

nlohmann::json accum_json(const TvAccum& a, const std::vector<std::string>& names) {
  nlohmann::json j;
  j["entries"] = a.n;
  j["base_norm"] = std::sqrt(a.base_sq);
  const int K = a.experts();
  for (int k = 0; k < K; ++k)
    j["experts"][names[k]] = {{"rel_norm", num(a.rel_norm(k))}, {"delta_norm", num(a.delta_norm(k))},
                              {"rms", num(a.rms(k))},           {"mean_abs", num(a.mean_abs(k))},
                              {"max_abs", num(a.max_abs[k])},   {"zero_frac", num(a.zero_frac(k))},
                              {"zeros", a.zeros[k]}};
  j["pairs"] = nlohmann::json::array();
  for (int i = 0; i < K; ++i)
    for (int c = i + 1; c < K; ++c) {
      int p = pair_index(i, c, K);
      j["pairs"].push_back({{"a", names[i]},
                            {"b", names[c]},
                            {"cosine", num(a.cosine(i, c))},
                            {"sign_agree", num(a.sign_agree(i, c))},
                            {"both_nonzero_frac", num(a.both_nonzero_frac(i, c))},
                            {"agree", a.agree[p]},
                            {"both_nonzero", a.both_nonzero[p]}});
    }
  return j;
}

}  // namespace

std::string TvStatsReport::to_markdown() const {
  std::ostringstream o;
  const int K = static_cast<int>(experts.size());
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < K; ++i)
    for (int c = i + 1; c < K; ++c) pairs.emplace_back(i, c);
  auto pair_name = [&](std::pair<int, int> p) { return experts[p.first] + "-" + experts[p.second]; };
  auto header = [&](const std::string& first, const std::vector<std::string>& cols) {
    o << "| " << first;
    for (auto& c : cols) o << " | " << c;
    o << " |\n|---";
    for (size_t i = 0; i < cols.size(); ++i) o << "|---:";
    o << "|\n";
  };
  std::vector<std::string> ex_cols(experts.begin(), experts.end()), pair_cols;
  for (auto& p : pairs) pair_cols.push_back(pair_name(p));

  o << "## Task-vector statistics\n\nbase: " << base << "\n";
  for (int k = 0; k < K; ++k) o << "expert " << experts[k] << ": " << expert_paths[k] << "\n";
  o << "\nPer position of the architecture table (attention = q/k/v/o, MLP = gate/up/down, embeddings/head, "
       "norms), over "
    << tensors << " tensors. delta = expert - base, float64 sums.\n";

  o << "\n### Relative norm ||delta|| / ||theta_pre||\n\n";
  std::vector<std::string> cols{"entries", "||theta_pre||"};
  cols.insert(cols.end(), ex_cols.begin(), ex_cols.end());
  header("position", cols);
  for (auto& [pos, a] : positions) {
    o << "| " << label(pos) << " | " << count_str(a.n) << " | " << fmt("%.4g", std::sqrt(a.base_sq));
    for (int k = 0; k < K; ++k) o << " | " << fmt("%.4g", a.rel_norm(k));
    o << " |\n";
  }
  if (!pairs.empty()) {
    o << "\n### Cosine between task vectors\n\n";
    header("position", pair_cols);
    for (auto& [pos, a] : positions) {
      o << "| " << label(pos);
      for (auto& p : pairs) o << " | " << fmt("%.4f", a.cosine(p.first, p.second));
      o << " |\n";
    }
    o << "\n### Sign agreement\n\nFraction of entries where sign(delta_a) == sign(delta_b), counted only over "
         "entries where both deltas are nonzero (that share is in the next table).\n\n";
    header("position", pair_cols);
    for (auto& [pos, a] : positions) {
      o << "| " << label(pos);
      for (auto& p : pairs) o << " | " << fmt("%.4f", a.sign_agree(p.first, p.second));
      o << " |\n";
    }
  }
  o << "\n### Exact zeros\n\nFraction of entries with delta == 0 per expert";
  if (!pairs.empty()) o << "; fraction with both deltas nonzero per pair";
  o << ".\n\n";
  std::vector<std::string> zcols;
  for (auto& e : experts) zcols.push_back(e + " zeros");
  for (auto& p : pairs) zcols.push_back(pair_name(p) + " both nonzero");
  header("position", zcols);
  for (auto& [pos, a] : positions) {
    o << "| " << label(pos);
    for (int k = 0; k < K; ++k) o << " | " << fmt("%.4f", a.zero_frac(k));
    for (auto& p : pairs) o << " | " << fmt("%.4f", a.both_nonzero_frac(p.first, p.second));
    o << " |\n";
  }
  o << "\n### Delta magnitude: RMS / max |delta|\n\n";
  header("position", ex_cols);
  for (auto& [pos, a] : positions) {
    o << "| " << label(pos);
    for (int k = 0; k < K; ++k) o << " | " << fmt("%.3g", a.rms(k)) << " / " << fmt("%.3g", a.max_abs[k]);
    o << " |\n";
  }
  for (auto& n : notes) o << "\nnote: " << n << "\n";
  return o.str();
}

std::string TvStatsReport::to_json() const {
  nlohmann::json j;
  j["kind"] = "bitmerge task-vector statistics";
  j["version"] = 1;
  j["base"] = base;
  for (size_t k = 0; k < experts.size(); ++k) j["experts"].push_back({{"name", experts[k]}, {"path", expert_paths[k]}});
  j["tensors"] = tensors;
  j["notes"] = notes;
  j["definitions"] = {
      {"delta", "expert - base, per entry, in float64"},
      {"rel_norm", "||delta|| / ||theta_pre|| (L2 over the entries of the group)"},
      {"cosine", "<delta_a, delta_b> / (||delta_a|| ||delta_b||)"},
      {"sign_agree", "entries with sign(delta_a) == sign(delta_b) / entries where both deltas are nonzero"},
      {"both_nonzero_frac", "entries where both deltas are nonzero / entries"},
      {"zero_frac", "entries with delta == 0 exactly / entries"},
      {"positions", "attention = q/k/v/o_proj, mlp = gate/up/down_proj, embed_head = embed_tokens + lm_head, "
                    "norm = RMSNorm weights, other = tensors outside the architecture table"}};
  for (auto& [pos, a] : positions) j["positions"][pos] = accum_json(a, experts);
  for (auto& [role, a] : roles) j["roles"][role] = accum_json(a, experts);
  j["layers"] = nlohmann::json::array();
  for (auto& [layer, ps] : layers) {
    nlohmann::json l;
    l["layer"] = layer;
    for (auto& [pos, a] : ps) l[pos] = accum_json(a, experts);
    j["layers"].push_back(l);
  }
  return j.dump(2) + "\n";
}

}  // namespace bm::merging
