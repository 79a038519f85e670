#include "merging/api.hpp"

#include <malloc.h>
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <cstdio>
#include <chrono>
#include <sys/stat.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>
#include <toml++/toml.h>

#include "harness/core/error.hpp"
#include "harness/core/log.hpp"
#include "harness/core/strings.hpp"
#include "merging/general.hpp"
#include "merging/gpu_feed.hpp"
#include "merging/packed_format.hpp"

namespace bm::merging {

std::optional<Position> paper_position(const std::string& n) {
  if (n == "chat") return Position::Mlp;
  if (n == "math" || n == "code") return Position::Attention;
  return std::nullopt;
}

static std::pair<std::string, std::string> split_kv(const std::string& item, const std::string& flag,
                                                    const std::string& form) {
  auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
    fail(flag + " " + item, "expected " + form);
  return {item.substr(0, eq), item.substr(eq + 1)};
}

std::vector<ExpertSpec> parse_experts_arg(const std::string& s) {
  std::vector<ExpertSpec> out;
  for (auto& item : split(s, ",")) {
    auto [n, p] = split_kv(item, "--experts", "name=DIR[,name=DIR...]");
    out.push_back({n, p, std::nullopt});
  }
  return out;
}

void apply_compress_arg(MergeSpec& spec, const std::string& s) {
  for (auto& item : split(s, ",")) {
    auto [n, p] = split_kv(item, "--compress", "name=attention|mlp|linear|none[:sign|:ternary[=DENSITY]][,...]");
    bool found = false;
    std::vector<std::string> names;
    for (auto& e : spec.experts) {
      names.push_back(e.name);
      if (e.name == n) {
        e.compress = parse_compression(p, "--compress " + item);
        found = true;
      }
    }
    if (!found) fail("--compress " + item, "no expert named '" + n + "'" + did_you_mean(n, names));
  }
}

void apply_param_arg(MergeSpec& spec, const std::string& kv) {
  auto [k, v] = split_kv(kv, "--param", "key=value or <expert>.key=value");
  spec.params[k] = v;
}

MergeSpec load_merge_config(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(path, std::string("TOML syntax error: ") + std::string(e.description()) + " at line " +
                   std::to_string(e.source().begin.line));
  }
  MergeSpec s;
  static const std::set<std::string> known{"method", "base", "output", "route", "device", "experts", "params", "compress"};
  for (auto& [k, v] : t) {
    std::string key(k.str());
    if (!known.count(key))
      fail(path + ": " + key, "unknown key" + did_you_mean(key, std::vector<std::string>(known.begin(), known.end())));
  }
  auto str = [&](const char* key) -> std::string {
    auto n = t[key];
    if (!n) return "";
    if (!n.is_string()) fail(path + ": " + key, "must be a string");
    return *n.value<std::string>();
  };
  s.method = str("method");
  s.base = str("base");
  s.output = str("output");
  s.route = str("route");
  if (!str("device").empty()) s.device = str("device");
  if (auto* ex = t["experts"].as_table()) {
    for (auto& [k, v] : *ex) {
      ExpertSpec e;
      e.name = std::string(k.str());
      if (v.is_string()) {
        e.path = *v.value<std::string>();
      } else if (auto* et = v.as_table()) {
        e.path = (*et)["path"].value_or(std::string());
        if (auto c = (*et)["compress"].value<std::string>()) e.compress = parse_compression(*c, path + ": experts." + e.name);
        for (const char* pk : {"weight", "density"})
          if (auto pv = (*et)[pk].value<double>()) s.params[e.name + "." + pk] = std::to_string(*pv);
      } else {
        fail(path + ": experts." + e.name, "must be a path string or a table with path");
      }
      if (e.path.empty()) fail(path + ": experts." + e.name, "has no path");
      s.experts.push_back(e);
    }
  }
  if (auto* pt = t["params"].as_table()) {
    for (auto& [k, v] : *pt) {
      std::string key(k.str());
      auto to_s = [&](const toml::node& n, const std::string& where) -> std::string {
        if (auto d = n.value<double>()) {
          if (n.is_integer()) return std::to_string(*n.value<int64_t>());
          std::ostringstream o;
          o.precision(17);
          o << *d;
          return o.str();
        }
        if (auto b = n.value<bool>()) return *b ? "true" : "false";
        if (auto st = n.value<std::string>()) return *st;
        fail(path + ": " + where, "must be a number, boolean or string");
      };
      if (auto* sub = v.as_table()) {
        for (auto& [k2, v2] : *sub) s.params[key + "." + std::string(k2.str())] = to_s(v2, "params." + key);
      } else {
        s.params[key] = to_s(v, "params." + key);
      }
    }
  }
  if (auto* ct = t["compress"].as_table()) {
    for (auto& [k, v] : *ct) {
      std::string n(k.str());
      auto p = v.value<std::string>();
      if (!p) fail(path + ": compress." + n, "must be a position string");
      apply_compress_arg(s, n + "=" + *p);
    }
  }
  return s;
}

// ---------------------------------------------------------------------------

struct Merger::Impl {
  MergeSpec spec;
  const MethodInfo* method = nullptr;
  Params params;
  std::shared_ptr<Checkpoint> base;
  std::vector<std::unique_ptr<ExpertSource>> experts;
  std::vector<std::string> expert_names;
  Compatibility compat;
  std::vector<std::string> notes;
  int route = -1;
  torch::Device device{torch::kCPU};
  std::vector<double> thresholds;
  bool thresholds_ready = false;
  // --device cuda
  std::unique_ptr<GpuFeed> feed;
  bool streaming_output = false;
  struct Profile {
    int64_t tensors = 0;
    double wait_s = 0, math_s = 0, to_host_s = 0, result_wait_s = 0, outside_s = 0;
    std::chrono::steady_clock::time_point first, last_return;
  } prof;
  std::thread cuda_warm;
  void join_warm() {
    if (cuda_warm.joinable()) cuda_warm.join();
  }
  ~Impl() { join_warm(); }  // also when the constructor throws
  // The thread computing ahead of a streaming caller (tensor_device).
  std::thread ahead;
  mutable std::mutex ahead_m;
  std::condition_variable ahead_cv;
  std::deque<std::pair<std::string, torch::Tensor>> ahead_ready;
  size_t ahead_next = 0;
  bool ahead_stop = false, ahead_started = false;
  std::exception_ptr ahead_error;
  // DARE (method->random_drop): the keep masks of the next tensors, drawn side by side on
  // worker threads while the current one is merged (merging/general.hpp DropMaskPool).
  // BITMERGE_DARE_AHEAD=0 turns it off (every mask drawn inline, as before; the same bits).
  std::unique_ptr<DropMaskPool> drop_pool;
  std::map<std::string, size_t> name_index;
  size_t drop_window = 1;  // tensors drawn ahead: about one thread per core for all experts, at most 8
  int64_t chunk_step(const std::string& name) const;  // CPU row-chunk step, 0 = whole tensor
  void request_masks(const std::string& name);

  bool needs_global_thresholds() const {
    if (!params.has("trim") || params.s("trim") != "global") return false;
    for (auto& n : expert_names)
      if (params.f("density", n) < 1.0) return true;
    return false;
  }

  // Per expert: the |delta| above which the top density fraction of all its
  // entries lie. Exact (kthvalue) up to 2^26 entries per expert; above, a
  // log2 histogram with 256 bins per octave (cut within 0.3% of exact).
  void compute_thresholds() {
    thresholds.assign(experts.size(), 0.0);
    const int64_t kExact = int64_t(1) << 26;
    const int kBinsPerOctave = 256, kOctaves = 96;
    std::vector<std::vector<torch::Tensor>> parts(experts.size());
    std::vector<torch::Tensor> hist(experts.size());
    std::vector<int64_t> total(experts.size(), 0);
    int64_t all = 0;
    for (auto& n : base->names()) all += base->info(n).numel();
    bool exact = all <= kExact;
    for (auto& n : base->names()) {
      auto b = base->get(n);
      auto bf = b.to(torch::kFloat32);
      for (size_t k = 0; k < experts.size(); ++k) {
        auto a = experts[k]->delta(n, bf).to_dense().abs().flatten();
        total[k] += a.numel();
        if (exact) {
          parts[k].push_back(a);
        } else {
          auto nz = a.masked_select(a > 0);
          auto bins = ((nz.log2() + 64.0) * kBinsPerOctave).floor().clamp(0, kBinsPerOctave * kOctaves - 1).to(torch::kLong);
          auto h = torch::bincount(bins, {}, kBinsPerOctave * kOctaves);
          hist[k] = hist[k].defined() ? hist[k] + h : h;
        }
      }
      release_pages(b);
    }
    for (size_t k = 0; k < experts.size(); ++k) {
      double density = params.f("density", expert_names[k]);
      auto keep = static_cast<int64_t>(density * static_cast<double>(total[k]));
      if (density >= 1.0 || keep >= total[k]) {
        thresholds[k] = 0.0;
      } else if (keep <= 0) {
        thresholds[k] = std::numeric_limits<double>::infinity();
      } else if (exact) {
        auto cat = torch::cat(parts[k]);
        thresholds[k] = std::get<0>(torch::kthvalue(cat, total[k] - keep + 1)).item<double>();
        parts[k].clear();
      } else {
        auto h = hist[k].to(torch::kLong);
        auto acc = h.flip(0).cumsum(0);
        int64_t idx = (acc >= keep).to(torch::kInt).argmax().item<int64_t>();
        int64_t bin = h.size(0) - 1 - idx;
        thresholds[k] = std::exp2(static_cast<double>(bin) / kBinsPerOctave - 64.0);
      }
    }
    thresholds_ready = true;
  }
};

Merger::Merger(const MergeSpec& spec) : impl_(std::make_unique<Impl>()) {
  // glibc raises its mmap threshold to the largest freed block (up to 32 MiB),
  // after which freed chunk temporaries stay in the heap and RSS keeps them;
  // a fixed 1 MiB threshold returns every large tensor to the OS on free.
  static const bool once = (mallopt(M_MMAP_THRESHOLD, 1 << 20), true);
  (void)once;
  Impl& I = *impl_;
  I.spec = spec;
  if (spec.method.empty()) fail("--method", "no merge method given; known: average, task_arithmetic, ties, dare, dare_ties, routing, onebit");
  I.method = &find_method(spec.method);
  if (spec.base.empty()) fail("--base", "no base model directory given");
  if (spec.experts.empty()) fail("--experts", "no experts given; write name=DIR[,name=DIR...]");
  for (auto& e : spec.experts) {
    if (e.name.empty() || e.name.find_first_of(".=, ") != std::string::npos)
      fail("--experts " + e.name, "expert names must be non-empty without '.', '=', ',' or spaces");
    if (std::find(I.expert_names.begin(), I.expert_names.end(), e.name) != I.expert_names.end())
      fail("--experts " + e.name, "expert name given twice");
    I.expert_names.push_back(e.name);
  }
  I.params = resolve_params(*I.method, spec.params, I.expert_names);
  if (I.method->needs_route) {
    if (spec.route.empty())
      fail("--route", "method " + I.method->name + " needs --route <expert> (one of the experts)");
  } else if (!spec.route.empty()) {
    fail("--route " + spec.route, "method " + I.method->name + " does not route; drop --route or use routing/onebit");
  }
  if (spec.device == "cuda") {
    if (!torch::cuda::is_available()) fail("--device cuda", "no CUDA device is available; use --device cpu");
    I.device = torch::Device(torch::kCUDA);
    // Create the CUDA context while the checkpoints are opened (a first GPU
    // merge's latency; joined before the first GPU use).
    I.cuda_warm = std::thread([] {
      try {
        torch::empty({1}, torch::TensorOptions().device(torch::kCUDA));
      } catch (...) {  // the first real use reports it
      }
    });
  } else if (spec.device != "cpu") {
    fail("--device " + spec.device, "unknown device; use cpu or cuda");
  }
  I.base = Checkpoint::open(spec.base);
  for (auto& e : spec.experts) {
    struct stat st {};
    if (stat(e.path.c_str(), &st) != 0) fail(e.path, "expert '" + e.name + "' does not exist; check --experts");
    std::optional<Compression> pos = e.compress;
    if (!pos && I.method->kind == MethodKind::OneBit) {
      pos = paper_position(e.name);
      if (!pos)
        fail("--compress", "method onebit compresses every expert; expert '" + e.name +
                               "' has no paper default (chat=mlp, math/code=attention): add --compress " + e.name +
                               "=attention|mlp|linear|none");
      I.notes.push_back("expert '" + e.name + "' compressed at " + position_name(pos->position) + " (paper default)");
    }
    if (S_ISREG(st.st_mode)) {
      auto src = open_packed_task_vector(e.path, *I.base, e.name);
      if (pos && *pos != src->compression())
        fail("--compress " + e.name, "the packed file was compressed as " + compression_name(src->compression()) +
                                         ", not " + compression_name(*pos) + "; drop --compress for it or recompress");
      I.experts.push_back(std::move(src));
    } else {
      I.experts.push_back(expert_from_checkpoint(e.name, Checkpoint::open(e.path), pos.value_or(Compression())));
    }
  }
  std::vector<const ExpertSource*> raw;
  for (auto& e : I.experts) raw.push_back(e.get());
  I.compat = check_compatible(*I.base, raw);
  for (auto& l : I.compat.lines()) I.notes.push_back(l);
  if (!spec.route.empty()) set_route(spec.route);
  const char* ahead = std::getenv("BITMERGE_DARE_AHEAD");
  size_t masked = 0;  // experts whose deltas DARE drops from
  for (auto& en : I.expert_names) {
    double d = I.params.has("density") ? I.params.f("density", en) : 1.0;
    masked += d > 0.0 && d < 1.0;
  }
  if (I.method->random_drop && masked > 0 && !(ahead && std::string(ahead) == "0")) {
    I.drop_pool = std::make_unique<DropMaskPool>();
    const auto& names = I.base->names();
    for (size_t i = 0; i < names.size(); ++i) I.name_index[names[i]] = i;
    unsigned hc = std::max(1u, std::thread::hardware_concurrency());
    I.drop_window = std::clamp<size_t>((hc > 2 ? hc - 2 : 1) / masked, 1, 8);
  }
}

int64_t Merger::drop_masks_served() const { return impl_->drop_pool ? impl_->drop_pool->served() : 0; }

Merger::~Merger() {
  if (!impl_) return;
  stop_ahead();
  impl_->join_warm();
}
const MergeSpec& Merger::spec() const { return impl_->spec; }
const Params& Merger::params() const { return impl_->params; }
const std::vector<std::string>& Merger::names() const { return impl_->base->names(); }
const ModelConfig& Merger::config() const { return impl_->base->config(); }
std::string Merger::tokenizer_dir() const { return impl_->base->dir(); }
std::vector<std::string> Merger::notes() const { return impl_->notes; }
const Checkpoint& Merger::base_checkpoint() const { return *impl_->base; }
const std::vector<std::unique_ptr<ExpertSource>>& Merger::expert_sources() const { return impl_->experts; }
const MethodInfo& Merger::method() const { return *impl_->method; }

std::vector<std::pair<DType, std::vector<int64_t>>> Merger::infos() const {
  std::vector<std::pair<DType, std::vector<int64_t>>> v;
  for (auto& n : names()) {
    auto i = impl_->base->info(n);
    v.emplace_back(i.dtype, i.shape);
  }
  return v;
}

void Merger::set_route(const std::string& expert) {
  auto& N = impl_->expert_names;
  auto it = std::find(N.begin(), N.end(), expert);
  if (it == N.end()) fail("--route " + expert, "no expert of that name" + did_you_mean(expert, N));
  // Results computed ahead (and, for routing, inputs queued) were for the old route.
  stop_ahead();
  if (impl_->method->kind == MethodKind::Routing) impl_->feed.reset();
  impl_->route = static_cast<int>(it - N.begin());
  impl_->spec.route = expert;
}

// Row chunk size (fp32 bytes per operand) of the streaming merge; env
// BITMERGE_MERGE_CHUNK_BYTES overrides (tests use it to force chunking).
static int64_t merge_chunk_bytes() {
  if (const char* e = std::getenv("BITMERGE_MERGE_CHUNK_BYTES")) {
    long long v = std::atoll(e);
    if (v > 0) return v;
  }
  return int64_t(4) << 20;
}

int64_t Merger::Impl::chunk_step(const std::string& name) const {
  auto info = base->info(name);
  int64_t numel = info.numel();
  int64_t chunk = merge_chunk_bytes();
  if (method->kind == MethodKind::Routing || method->whole_tensor || info.shape.empty() || info.shape[0] <= 1 ||
      numel * 4 <= chunk)
    return 0;
  for (auto& e : experts)
    if (!e->can_slice(name) || e->shape(name) != info.shape) return 0;
  int64_t row_elems = numel / info.shape[0];
  int64_t step = std::max<int64_t>(1, chunk / std::max<int64_t>(1, row_elems * 4));
  return step < info.shape[0] ? step : 0;
}

// Starts the masks of `name` and of the next drop_window - 1 tensors. A mask asked for
// with other sizes (an expert with fewer rows than the base) is not used: take() then
// draws inline.
void Merger::Impl::request_masks(const std::string& name) {
  if (!drop_pool) return;
  auto it = name_index.find(name);
  if (it == name_index.end()) return;
  auto seed = static_cast<uint64_t>(params.i("seed"));
  const auto& names = base->names();
  for (size_t j = it->second; j < std::min(names.size(), it->second + drop_window); ++j) {
    const auto& n = names[j];
    if (!device.is_cuda() && chunk_step(n) > 0) continue;  // row chunks draw from their own generators
    auto shape = base->info(n).shape;
    for (auto& en : expert_names) {
      double d = params.f("density", en);
      if (d > 0.0 && d < 1.0) drop_pool->request(en, n, shape, d, seed);
    }
  }
}

// Large dense tensors are merged in row chunks: the fp32 base, deltas and
// temporaries of one chunk at a time; the input pages are released as used.
torch::Tensor Merger::tensor_chunked(const std::string& name, int64_t step) {
  Impl& I = *impl_;
  auto b = I.base->get(name);
  auto dtype = b.scalar_type();
  int64_t rows = b.size(0);
  int64_t row_elems = rows ? b.numel() / rows : 0;
  auto out = torch::empty(b.sizes(), torch::TensorOptions().dtype(dtype));
  size_t K = I.experts.size();
  std::vector<TensorJob::TrimCut> cuts(K);
  std::vector<at::Generator> gens(K);
  bool trim_tensor = I.method->magnitude_trim && !(I.params.has("trim") && I.params.s("trim") == "global");
  auto base_rows = [&](int64_t r0, int64_t len) {
    auto v = b.narrow(0, r0, len);
    auto f = v.to(I.device).to(torch::kFloat32);
    if (f.data_ptr() == v.data_ptr()) f = f.clone();
    return std::make_pair(v, f);
  };
  if (trim_tensor) {
    // One expert at a time: |delta| of the whole tensor in one fp32 buffer,
    // selected in place, freed before the next.
    for (size_t k = 0; k < K; ++k) {
      double density = I.params.f("density", I.expert_names[k]);
      if (density >= 1.0) continue;
      auto a = torch::empty({b.numel()}, torch::TensorOptions().dtype(torch::kFloat32));
      for (int64_t r0 = 0; r0 < rows; r0 += step) {
        int64_t len = std::min(step, rows - r0);
        auto [v, f] = base_rows(r0, len);
        auto d = I.experts[k]->delta_rows(name, f, r0).dense;
        a.narrow(0, r0 * row_elems, len * row_elems).copy_(d.abs().reshape({-1}));
        release_pages(v);
      }
      cuts[k] = trim_cut(a, density);
    }
  }
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    int64_t len = std::min(step, rows - r0);
    auto [v, f] = base_rows(r0, len);
    TensorJob job;
    job.name = name;
    job.role = classify_tensor(name).role;
    for (auto& e : I.experts) job.deltas.push_back(e->delta_rows(name, f, r0));
    release_pages(v);
    job.base = f;
    job.expert_names = I.expert_names;
    job.params = &I.params;
    job.route = I.route;
    job.global_thresholds = I.thresholds_ready ? &I.thresholds : nullptr;
    job.tensor_cuts = trim_tensor ? &cuts : nullptr;
    job.dare_gens = &gens;
    auto res = I.method->merge(job);
    out.narrow(0, r0, len).copy_(res.to(torch::kCPU).to(dtype).reshape(v.sizes()));
  }
  return out;
}

void Merger::set_streaming_output(bool on) {
  Impl& I = *impl_;
  if (I.streaming_output == on) return;
  stop_ahead();
  I.streaming_output = on;
  // cuda: start computing from the first tensor now (CUDA context, pinned
  // buffers, the first reads) while the caller prepares its output.
  if (on && I.device.is_cuda() && !(I.method->needs_route && I.route < 0) && !I.base->names().empty()) {
    if (I.needs_global_thresholds() && !I.thresholds_ready) I.compute_thresholds();
    start_ahead(0);
  }
}

std::string Merger::profile_line() const {
  const Impl& I = *impl_;
  if (!I.feed) return "";
  std::lock_guard<std::mutex> g(I.ahead_m);
  const auto& P = I.prof;
  double total = std::chrono::duration<double>(P.last_return - P.first).count();
  auto u = I.feed->upload_stats();
  char buf[768];
  std::snprintf(buf, sizeof buf,
                "cuda merge of %lld tensors: %.2f s from first request to last result; computing side%s: waiting for "
                "inputs %.2f s, GPU math %.2f s, copy back %.2f s; caller: waiting for results %.2f s, between "
                "requests (writing) %.2f s; upload: %d threads (%s), %.2f GB, %.2f worker-s reading (%.2f GB/s per "
                "thread), %.2f worker-s waiting for H2D; %lld pinned output buffers",
                static_cast<long long>(P.tensors), total, I.ahead_started ? " (thread ahead)" : "", P.wait_s, P.math_s,
                P.to_host_s, P.result_wait_s, P.outside_s, I.feed->threads(), I.feed->uses_pread() ? "pread" : "mmap",
                u.bytes / 1e9, u.read_s, u.read_s > 0 ? u.bytes / 1e9 / u.read_s : 0.0, u.copy_wait_s,
                static_cast<long long>(I.feed->outputs().buffers()));
  return buf;
}

// The whole tensor on the GPU: inputs from the feed, the method's math, the
// result copied to host memory (pinned when streaming).
torch::Tensor Merger::compute_device(const std::string& name) {
  Impl& I = *impl_;
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  if (!I.feed) {
    I.join_warm();
    bool routing = I.method->kind == MethodKind::Routing;
    int64_t max_bytes = 0;
    for (auto& n : I.base->names()) max_bytes = std::max<int64_t>(max_bytes, I.base->info(n).nbytes);
    I.feed = std::make_unique<GpuFeed>(
        I.device, I.base->names(),
        [&I, routing](const std::string& n) {
          std::vector<torch::Tensor> v{I.base->get(n)};
          for (size_t k = 0; k < I.experts.size(); ++k)
            v.push_back(routing && static_cast<int>(k) != I.route ? torch::Tensor() : I.experts[k]->stored(n));
          return v;
        },
        max_bytes);
  }
  auto t0 = Clock::now();
  // Pinning the output buffer (the first uses of each size allocate) overlaps the inputs' reading.
  I.feed->prefetch(name);
  torch::Tensor out;
  if (I.streaming_output) {
    auto info = I.base->info(name);
    out = I.feed->outputs().take(info.shape, to_torch_dtype(info.dtype));
  }
  auto in = I.feed->take(name);
  auto t1 = Clock::now();
  auto dtype = in[0].scalar_type();
  TensorJob job;
  job.name = name;
  job.role = classify_tensor(name).role;
  auto bf = in[0].to(torch::kFloat32);  // our own device copy: never the mapping
  in[0] = torch::Tensor();
  for (size_t k = 0; k < I.experts.size(); ++k) {
    auto& e = I.experts[k];
    if (I.method->kind == MethodKind::Routing && static_cast<int>(k) != I.route) {
      job.deltas.emplace_back();
      continue;
    }
    job.deltas.push_back(in[k + 1].defined() ? e->delta_with(name, bf, in[k + 1]) : e->delta(name, bf).to(I.device));
    in[k + 1] = torch::Tensor();
  }
  job.base = bf;
  job.expert_names = I.expert_names;
  job.params = &I.params;
  job.route = I.route;
  job.global_thresholds = I.thresholds_ready ? &I.thresholds : nullptr;
  I.request_masks(name);
  job.drop_masks = I.drop_pool.get();
  auto merged = I.method->merge(job).to(dtype);
  job = TensorJob();
  auto t2 = Clock::now();
  if (out.defined() && out.sizes() == merged.sizes() && out.scalar_type() == merged.scalar_type()) {
    out.copy_(merged);
  } else {
    out = merged.to(torch::kCPU).contiguous();
  }
  auto t3 = Clock::now();
  std::lock_guard<std::mutex> g(I.ahead_m);
  I.prof.wait_s += secs(t0, t1);
  I.prof.math_s += secs(t1, t2);
  I.prof.to_host_s += secs(t2, t3);
  return out;
}

void Merger::stop_ahead() {
  Impl& I = *impl_;
  {
    std::lock_guard<std::mutex> g(I.ahead_m);
    I.ahead_stop = true;
  }
  I.ahead_cv.notify_all();
  if (I.ahead.joinable()) I.ahead.join();
  I.ahead_ready.clear();
  I.ahead_error = nullptr;
  I.ahead_stop = false;
}

// Streaming (merge_models): a thread computes the next tensors (at most
// kAhead results waiting) while the caller writes the previous one.
torch::Tensor Merger::tensor_device(const std::string& name) {
  Impl& I = *impl_;
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  auto t0 = Clock::now();
  {
    std::lock_guard<std::mutex> g(I.ahead_m);
    if (I.prof.tensors == 0) I.prof.first = t0;
    else I.prof.outside_s += secs(I.prof.last_return, t0);
  }
  torch::Tensor out;
  if (!I.streaming_output) {
    if (I.ahead.joinable()) stop_ahead();
    out = compute_device(name);
  } else {
    const auto& names = I.base->names();
    bool queued = false;
    {
      std::lock_guard<std::mutex> g(I.ahead_m);
      // Served in order from the thread: the next result, or the one being made.
      queued = I.ahead.joinable() && ((!I.ahead_ready.empty() && I.ahead_ready.front().first == name) ||
                                      (I.ahead_ready.empty() && I.ahead_next < names.size() && names[I.ahead_next] == name));
    }
    if (!queued) {
      stop_ahead();
      size_t start = std::find(names.begin(), names.end(), name) - names.begin();
      if (start == names.size()) fail(name, "not a tensor of the base (internal error)");
      start_ahead(start);
    }
    std::unique_lock<std::mutex> lk(I.ahead_m);
    I.ahead_cv.wait(lk, [&] { return !I.ahead_ready.empty() || I.ahead_error; });
    if (I.ahead_ready.empty()) {
      auto e = I.ahead_error;
      lk.unlock();
      stop_ahead();
      std::rethrow_exception(e);
    }
    out = std::move(I.ahead_ready.front().second);
    I.ahead_ready.pop_front();
    I.ahead_cv.notify_all();
  }
  auto t1 = Clock::now();
  std::lock_guard<std::mutex> g(I.ahead_m);
  I.prof.tensors++;
  I.prof.result_wait_s += secs(t0, t1);
  I.prof.last_return = t1;
  return out;
}

void Merger::start_ahead(size_t start) {
  Impl& I = *impl_;
  I.ahead_next = start;
  I.ahead_started = true;
  I.ahead = std::thread([this, &I] {
    constexpr size_t kAhead = 2;
    while (true) {
      std::string n;
      {
        std::unique_lock<std::mutex> lk(I.ahead_m);
        I.ahead_cv.wait(lk, [&] { return I.ahead_stop || I.ahead_ready.size() < kAhead; });
        if (I.ahead_stop || I.ahead_next >= I.base->names().size()) return;
        n = I.base->names()[I.ahead_next];
      }
      torch::Tensor t;
      try {
        t = compute_device(n);
      } catch (...) {
        std::lock_guard<std::mutex> g(I.ahead_m);
        I.ahead_error = std::current_exception();
        I.ahead_cv.notify_all();
        return;
      }
      std::lock_guard<std::mutex> g(I.ahead_m);
      I.ahead_ready.emplace_back(n, std::move(t));
      I.ahead_next++;
      I.ahead_cv.notify_all();
    }
  });
}

torch::Tensor Merger::tensor(const std::string& name) {
  Impl& I = *impl_;
  if (I.method->needs_route && I.route < 0) fail("--route", "method " + I.method->name + " needs --route");
  if (I.needs_global_thresholds() && !I.thresholds_ready) I.compute_thresholds();
  if (I.device.is_cuda()) return tensor_device(name);
  if (int64_t step = I.chunk_step(name); step > 0) return tensor_chunked(name, step);
  auto b = I.base->get(name);
  auto dtype = b.scalar_type();
  TensorJob job;
  job.name = name;
  job.role = classify_tensor(name).role;
  // The raw dtype crosses to the device; conversions and math happen there.
  auto bf = b.to(I.device).to(torch::kFloat32);
  if (bf.data_ptr() == b.data_ptr()) bf = bf.clone();  // never compute on the mapped view
  release_pages(b);
  for (auto& e : I.experts) {
    // Routing needs only the routed expert's delta.
    if (I.method->kind == MethodKind::Routing && e.get() != I.experts[I.route].get()) {
      job.deltas.emplace_back();
      continue;
    }
    job.deltas.push_back(e->delta(name, bf));
  }
  job.base = bf;
  job.expert_names = I.expert_names;
  job.params = &I.params;
  job.route = I.route;
  job.global_thresholds = I.thresholds_ready ? &I.thresholds : nullptr;
  I.request_masks(name);
  job.drop_masks = I.drop_pool.get();
  auto out = I.method->merge(job);
  return out.to(dtype).to(torch::kCPU).contiguous();
}

std::string Merger::provenance_json() const {
  const Impl& I = *impl_;
  nlohmann::json j;
  j["tool"] = "bitmerge merge";
  j["method"] = I.method->name;
  j["base"] = {{"dir", I.base->dir()}, {"fingerprint", I.base->fingerprint()}};
  j["params"] = I.params.global_;
  j["per_expert_params"] = I.params.per_expert_;
  j["route"] = I.spec.route;
  j["device"] = I.spec.device;
  nlohmann::json ex = nlohmann::json::array();
  for (auto& e : I.experts)
    ex.push_back({{"name", e->name()}, {"path", e->path()}, {"compress", compression_name(e->compression())}});
  j["experts"] = ex;
  j["notes"] = I.notes;
  if (I.thresholds_ready) j["global_trim_thresholds"] = I.thresholds;
  j["sign_zero"] = "+1";
  return j.dump(2);
}

std::vector<std::string> merge_models(const MergeSpec& spec) {
  if (spec.output.empty()) fail("--output", "no output directory given");
  Merger m(spec);
  for (auto& n : m.notes()) log_info("merge: " + n);
  ModelWriteOptions opts;
  opts.max_shard_bytes = spec.max_shard_bytes;
  opts.provenance_json = m.provenance_json();
  opts.metadata = {{"format", "pt"}, {"bitmerge_method", spec.method}};
  // Routing to an uncompressed expert: the expert itself, verbatim.
  if (m.spec().method == "routing") {
    auto& I = m;
    (void)I;
  }
  const MethodInfo& method = find_method(spec.method);
  if (method.kind == MethodKind::Routing) {
    std::shared_ptr<Checkpoint> ck;
    for (auto& e : spec.experts)
      if (e.name == spec.route && !e.compress) {
        struct stat st {};
        if (stat(e.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ck = Checkpoint::open(e.path);
      }
    if (ck) {
      std::vector<std::pair<DType, std::vector<int64_t>>> infos;
      for (auto& n : ck->names()) {
        auto i = ck->info(n);
        infos.emplace_back(i.dtype, i.shape);
      }
      write_model_dir(
          spec.output, ck->config(), ck->names(), infos,
          [&](const std::string& n) {
            auto t = ck->get(n).clone();
            return t;
          },
          ck->dir(), opts);
      return m.notes();
    }
  }
  m.set_streaming_output(true);
  Progress prog("merge " + spec.method, static_cast<int64_t>(m.names().size()));
  write_model_dir(
      spec.output, m.config(), m.names(), m.infos(),
      [&](const std::string& n) {
        auto t = m.tensor(n);
        prog.advance(1, n);
        return t;
      },
      m.tokenizer_dir(), opts);
  prog.finish();
  if (!m.profile_line().empty()) log_info("merge: " + m.profile_line());
  return m.notes();
}

std::map<std::string, torch::Tensor> merge_in_memory(const MergeSpec& spec) {
  Merger m(spec);
  std::map<std::string, torch::Tensor> out;
  for (auto& n : m.names()) out[n] = m.tensor(n);
  return out;
}

}  // namespace bm::merging
