// Log-likelihood: requests are grouped by identical context tokens; one row
// per group holds the context once followed by every continuation of the
// group, and a mask lets each continuation see only the context and itself
// (positions restart after the context for each continuation). So a
// multiple-choice question costs one context pass, not one per choice, and
// needs no KV cache copies. Rows are sorted by length and right-padded (pads
// are after every real token, so causal attention ignores them).
//
// Generation: prompts sorted by length, left-padded, prefilled into a
// preallocated KV cache, then one token per step; the host looks at the new
// tokens every `check_every` steps (EOS, stop strings, max_new_tokens).
#include "harness/engine/engine.hpp"

#include <ATen/ATen.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#ifdef BITMERGE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/shapes.hpp"

namespace bm {

torch::Device parse_device(const std::string& s) {
  if (s == "cpu") return torch::Device(torch::kCPU);
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) fail("--device " + s, "CUDA is not available on this machine; use --device cpu");
    return torch::Device(s);
  }
  fail("--device " + s, "unknown device; use cpu, cuda or cuda:N");
}

torch::Dtype parse_dtype_name(const std::string& s, torch::Device device) {
  if (s.empty()) return device.is_cpu() ? torch::kFloat32 : torch::kBFloat16;
  if (s == "float32" || s == "fp32") return torch::kFloat32;
  if (s == "bfloat16" || s == "bf16") return torch::kBFloat16;
  if (s == "float16" || s == "fp16") return torch::kFloat16;
  fail("--dtype " + s, "unknown dtype; use float32, bfloat16 or float16");
}

const char* dtype_label(torch::Dtype d) {
  switch (d) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return "other";
  }
}

static bool is_py_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const Tokenizer& tok, const std::string& context_in,
                                                                  const std::string& continuation_in, bool add_bos) {
  if (context_in.empty()) return {{tok.bos_id()}, tok.encode(continuation_in, false)};
  std::string context = context_in, continuation = continuation_in;
  size_t end = context.size();
  while (end > 0 && is_py_space(context[end - 1])) --end;
  if (end < context.size()) {
    continuation = context.substr(end) + continuation;
    context = context.substr(0, end);
  }
  auto whole = encode_text(tok, context + continuation, add_bos);
  auto ctx = encode_text(tok, context, add_bos);
  std::vector<int64_t> cont(whole.begin() + static_cast<std::ptrdiff_t>(std::min(ctx.size(), whole.size())), whole.end());
  return {ctx, cont};
}

std::vector<int64_t> encode_text(const Tokenizer& tok, const std::string& text, bool add_bos) {
  const std::string bos = tok.bos_id() >= 0 ? tok.piece(tok.bos_id()) : std::string();
  if (!bos.empty() && text.compare(0, bos.size(), bos) == 0) {
    std::vector<int64_t> out = {tok.bos_id()};
    auto rest = tok.encode(text.substr(bos.size()), false);
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
  }
  return tok.encode(text, add_bos);
}

MemoryModel memory_model(const ModelConfig& c, int64_t b) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers, V = c.vocab_size;
  const int64_t nh = c.num_attention_heads, nkv = kv_heads(c), D = head_dim(c);  // harness/models/shapes.hpp
  MemoryModel m;
  m.kv_bytes_per_token = 2 * L * nkv * D * b;
  // One layer live at a time (inference mode): residual, norm out, q/k/v,
  // RoPE temporaries, repeated K/V (GQA with a mask), attention out, gate, up,
  // silu*up; fp32 RMSNorm temporaries. x1.5 for allocator fragmentation.
  const int64_t per = b * (4 * H + 3 * nh * D + 2 * nkv * D + 2 * nh * D + 3 * I) + 4 * 3 * H;
  m.act_bytes_per_token = per * 3 / 2;
  // LM head over a 4096-row chunk (model dtype + fp32 copy + log_softmax) and 1 GiB slack.
  m.fixed_bytes = 4096 * V * (b + 8) + (int64_t{1} << 30);
  return m;
}

BatchPlan plan_batches(const MemoryModel& m, int64_t free_bytes, int64_t cache_len, int64_t max_row_len) {
  BatchPlan p;
  cache_len = std::max<int64_t>(cache_len, 1);
  max_row_len = std::max<int64_t>(max_row_len, 1);
  const int64_t usable = free_bytes / 10 * 9 - m.fixed_bytes;
  if (usable <= 0) return p;  // one row at a time
  // Scoring: activations plus the [T, T] mask (bool, additive copy, temporaries: ~6 bytes/element) per token.
  const int64_t score_per_token = m.act_bytes_per_token + 6 * max_row_len;
  p.score_tokens = std::clamp<int64_t>(usable / score_per_token, 1, kMaxScoreTokens);
  // Generation: an eighth of the memory for prefill forwards (activations,
  // their mask and the prefill's own K/V before it is copied into the cache;
  // 8k tokens of a 7B model already run the GEMMs at full rate) ...
  const int64_t prefill_per_token = m.act_bytes_per_token + m.kv_bytes_per_token + 6 * cache_len;
  p.prefill_tokens = std::clamp<int64_t>(usable / 8 / prefill_per_token, 1, 16384);
  // ... the rest for cache rows (K/V slots + per-step repeated-K/V and mask temporaries).
  const int64_t per_row =
      cache_len * (m.kv_bytes_per_token + m.kv_bytes_per_token / std::max<int64_t>(m.kv_temp_div, 1) + 8);
  const int64_t rest = usable - p.prefill_tokens * prefill_per_token;
  p.gen_rows = std::clamp<int64_t>(rest / std::max<int64_t>(per_row, 1), 1, kMaxGenRows);
  return p;
}

namespace {
int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
[[maybe_unused]] bool env_off(const char* k) {
  const char* v = std::getenv(k);
  return v && std::string(v) == "0";
}
bool env_on(const char* k) {
  const char* v = std::getenv(k);
  return v && *v && std::string(v) != "0";
}
#ifdef BITMERGE_WITH_CUDA
c10::cuda::CUDAStream engine_stream(torch::Device dev) {
  static std::map<int, c10::cuda::CUDAStream> streams;
  const c10::DeviceIndex idx = dev.has_index() ? dev.index() : c10::cuda::current_device();
  auto it = streams.find(idx);
  if (it == streams.end()) it = streams.emplace(idx, c10::cuda::getStreamFromPool(false, idx)).first;
  return it->second;
}
#endif
}  // namespace

bool Engine::use_cuda_graphs() const {
#ifdef BITMERGE_WITH_CUDA
  return model_->device().is_cuda() && opts_.cuda_graphs && !env_off("BITMERGE_CUDA_GRAPHS");
#else
  return false;
#endif
}

double Engine::prof_now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Engine::prof_tick(const char* phase, double& t0) {
  if (!profile_) return;
  if (model_->device().is_cuda()) torch::cuda::synchronize();
  const double t = prof_now();
  prof_[phase] += t - t0;
  t0 = t;
}

void Engine::prof_report(const char* what) {
  if (!profile_) return;
  std::ostringstream o;
  o << "engine profile (" << what << ", device synchronised per phase):";
  for (const auto& [k, v] : prof_) o << " " << k << "=" << v << "s";
  o << " | score_forwards=" << stats_.score_forwards << " score_tokens=" << stats_.score_tokens
    << " prefill_forwards=" << stats_.prefill_forwards << " decode_steps=" << stats_.decode_steps
    << " host_syncs=" << stats_.host_syncs << " graph_captures=" << stats_.graph_captures
    << " graph_replays=" << stats_.graph_replays << " max_gen_rows=" << stats_.max_gen_rows << " gen_groups=" << stats_.gen_groups;
  log_info(o.str());
  prof_.clear();
}

double Engine::warmup() {
  if (model_->device().is_cpu()) return 0.0;
  c10::InferenceMode guard;
  const double t0 = prof_now();
  auto tokens = torch::ones({1, 16}, torch::TensorOptions().dtype(torch::kInt64).device(model_->device()));
  model_->forward(tokens);
  // The scoring head (log_softmax, gather, index_add, segment mask) and the
  // generation path (padded prefill, decode step, graph capture) once on
  // tiny inputs: their kernels load on first use. Counters stay untouched.
  const Stats saved = stats_;
  const bool prof = profile_;
  profile_ = false;
  std::vector<int64_t> ctx{1, 2, 3, 4, 5, 6, 7, 8};
  loglikelihood_tokens({{ctx, {3, 4}}, {ctx, {5, 6, 7}}, {{1, 2, 3}, {4}}});
  generate_tokens({{ctx, {}, 4}, {{1, 2, 3}, {}, 4}});
  torch::cuda::synchronize();
  stats_ = saved;
  profile_ = prof;
  return prof_now() - t0;
}

Engine::Engine(std::shared_ptr<Transformer> model, std::shared_ptr<Tokenizer> tokenizer, EngineOptions opts,
               std::string model_name)
    : model_(std::move(model)), tok_(std::move(tokenizer)), opts_(std::move(opts)), name_(std::move(model_name)) {
  if (opts_.batch_size < 0) fail("--batch-size", "must be 0 (auto) or at least 1");
  if (opts_.token_budget < 0) fail("--token-budget", "must be 0 (auto) or at least 1");
  if (opts_.check_every < 1) opts_.check_every = 1;
  profile_ = env_on("BITMERGE_ENGINE_PROFILE");
  max_len_ = opts_.max_length > 0 ? opts_.max_length : model_->config().max_position_embeddings;
  if (max_len_ < 2) max_len_ = 2;
}

std::unique_ptr<Engine> Engine::load(const std::string& model_dir, const EngineOptions& opts) {
  auto device = parse_device(opts.device);
  auto dtype = parse_dtype_name(opts.dtype, device);
  // Without tokenizer.model only token-id requests work (device scripts use that).
  std::string tok_note;
  std::shared_ptr<Tokenizer> tok = Tokenizer::load_for_model_dir(model_dir, opts.tokenizer_fallback, &tok_note);
  auto ck = Checkpoint::open(model_dir);
  auto model = Transformer::from_checkpoint(*ck, device, dtype);
  auto eng = std::make_unique<Engine>(model, tok, opts, model_dir);
  eng->fingerprint_ = ck->fingerprint();
  if (tok && !file_exists(model_dir + "/tokenizer.model")) eng->tokenizer_note_ = tok_note;
  // CUDA context, cuBLAS handles and kernel loading belong to loading (HF
  // peers warm up the same way before timing), not to the first request.
  if (!device.is_cpu()) {
    std::ostringstream o;
    o << "engine: CUDA warm-up " << eng->warmup() << " s";
    log_info(o.str());
  }
  return eng;
}

const Tokenizer& Engine::need_tokenizer() const {
  if (!tok_)
    fail(name_ + "/tokenizer.model", "missing; text requests need it (token-id requests do not); a repo that ships "
                                     "tokenizer.json only is evaluated with its base's tokenizer.model (run it in a family, "
                                     "or copy the base's tokenizer.model after checking the ids agree)");
  return *tok_;
}
int64_t Engine::bos_id() const { return tok_ ? tok_->bos_id() : model_->config().bos_token_id; }
int64_t Engine::eos_id() const { return tok_ ? tok_->eos_id() : model_->config().eos_token_id; }

int64_t Engine::free_device_bytes() const { return device_free_bytes(model_->device()); }

int64_t device_free_bytes(const torch::Device& dev) {
  if (dev.is_cpu() || !torch::cuda::is_available()) return 0;
  auto* alloc = c10::getDeviceAllocator(dev.type());
  const auto idx = dev.has_index() ? dev.index() : c10::DeviceIndex(0);
  auto [free, total] = alloc->getMemoryInfo(idx);
  (void)total;
  auto st = alloc->getDeviceStats(idx);
  const int64_t cached_unused = st.reserved_bytes[0].current - st.allocated_bytes[0].current;
  return static_cast<int64_t>(free) + std::max<int64_t>(cached_unused, 0);
}

int64_t Engine::gen_rows_for(int64_t cache_len) const {
  if (model_->device().is_cpu()) return opts_.batch_size > 0 ? opts_.batch_size : kCpuGenRows;
  const int64_t b = model_->dtype() == torch::kFloat32 ? 4 : 2;
  auto m = memory_model(model_->config(), b);
  if (model_->fused_decode()) m.kv_temp_div = 16;
  auto plan = plan_batches(m, free_device_bytes(), cache_len, 1);
  return opts_.batch_size > 0 ? std::min(opts_.batch_size, plan.gen_rows) : plan.gen_rows;
}

int64_t Engine::score_token_budget(int64_t max_row_len) const {
  if (opts_.token_budget > 0) return opts_.token_budget;
  if (model_->device().is_cpu()) return kCpuTokenBudget;
  const int64_t b = model_->dtype() == torch::kFloat32 ? 4 : 2;
  return plan_batches(memory_model(model_->config(), b), free_device_bytes(), 1, max_row_len).score_tokens;
}

std::string Engine::description() const {
  std::ostringstream o;
  o << "bitmerge-libtorch model=" << name_;
  if (!fingerprint_.empty()) o << " fingerprint=" << fingerprint_;
  o << " device=" << model_->device().str()
    << " dtype=" << dtype_label(model_->dtype()) << " add_bos=" << (opts_.add_bos ? "true" : "false")
    << " max_length=" << max_len_ << " tokenization=lm-eval(whole string encoded, split at context length,"
    << " trailing context whitespace moved to continuation) generation=greedy";
  if (!tokenizer_note_.empty()) o << " tokenizer=" << tokenizer_note_;
  return o.str();
}

std::vector<LoglikelihoodResult> Engine::loglikelihood(const std::vector<LoglikelihoodRequest>& reqs) {
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs;
  pairs.reserve(reqs.size());
  for (const auto& r : reqs) {
    if (!r.context_ids.empty() || !r.continuation_ids.empty())
      pairs.emplace_back(r.context_ids, r.continuation_ids);
    else
      pairs.push_back(encode_pair(need_tokenizer(), r.context, r.continuation, opts_.add_bos));
  }
  return loglikelihood_tokens(pairs);
}

namespace {
struct Row {
  size_t group;
  std::vector<size_t> members;  // request indices
  int64_t length;
};
}  // namespace

std::vector<LoglikelihoodResult> Engine::loglikelihood_tokens(
    const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& pairs) {
  c10::InferenceMode guard;
  const size_t n = pairs.size();
  std::vector<LoglikelihoodResult> results(n);
  std::vector<std::vector<int64_t>> ctxs(n);
  std::map<std::vector<int64_t>, size_t> group_of;
  std::vector<std::vector<size_t>> groups;
  std::vector<const std::vector<int64_t>*> group_ctx;
  for (size_t i = 0; i < n; ++i) {
    const auto& [ctx_in, cont] = pairs[i];
    if (cont.empty()) {
      results[i] = {0.0, true, 0};
      continue;
    }
    if (ctx_in.empty())
      fail("request " + std::to_string(i), "empty context; give at least one context token (e.g. BOS)");
    if (static_cast<int64_t>(cont.size()) > max_len_)
      fail("request " + std::to_string(i), "continuation of " + std::to_string(cont.size()) +
                                               " tokens exceeds the max length " + std::to_string(max_len_));
    auto ctx = ctx_in;
    const int64_t total = static_cast<int64_t>(ctx.size() + cont.size());
    if (total > max_len_ + 1) ctx.erase(ctx.begin(), ctx.begin() + (total - max_len_ - 1));  // lm-eval: keep the end
    auto [it, fresh] = group_of.emplace(std::move(ctx), groups.size());
    if (fresh) {
      groups.emplace_back();
      group_ctx.push_back(&it->first);
    }
    groups[it->second].push_back(i);
  }
  // Pack each group's continuations after its context, several rows if long.
  std::vector<Row> rows;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t L = static_cast<int64_t>(group_ctx[g]->size());
    const int64_t budget = std::max<int64_t>(L, 256);
    Row cur{g, {}, L};
    for (size_t i : groups[g]) {
      const int64_t extra = static_cast<int64_t>(pairs[i].second.size()) - 1;
      if (!cur.members.empty() && cur.length - L + extra > budget) {
        rows.push_back(cur);
        cur = Row{g, {}, L};
      }
      cur.members.push_back(i);
      cur.length += extra;
    }
    rows.push_back(cur);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.length > b.length; });

  const auto dev = model_->device();
  const int64_t hidden = model_->config().hidden_size;
  // Length-sorted rows; each forward takes rows while rows x (first row's
  // length) fits the token budget (and --batch-size rows when given).
  const int64_t budget = rows.empty() ? 1 : score_token_budget(rows.front().length);
  const size_t row_cap = opts_.batch_size > 0 ? static_cast<size_t>(opts_.batch_size) : rows.size();
  size_t next_start = 0;
  // Per forward: one pinned host buffer (tokens, positions, segments,
  // gather indices, targets, slots) -> one H2D copy; log-probs and greedy
  // misses summed per request on the device -> one D2H copy.
  double t_phase = prof_now();
  for (size_t start = 0; start < rows.size(); start = next_start) {
    const int64_t T = std::max<int64_t>(rows[start].length, 1);
    const size_t fit = static_cast<size_t>(std::max<int64_t>(budget / T, 1));
    const size_t end = std::min({rows.size(), start + row_cap, start + fit});
    next_start = end;
    const int64_t B = static_cast<int64_t>(end - start);
    ++stats_.score_forwards;
    stats_.score_rows += B;
    stats_.score_tokens += B * T;
    // A row needs the segment mask only when two or more of its
    // continuations feed tokens (single-token ones only read the context's
    // last logits: MMLU letters cost a plain causal row).
    bool multi = false;
    int64_t N = 0, nslots = 0;
    for (int64_t r = 0; r < B; ++r) {
      const Row& row = rows[start + static_cast<size_t>(r)];
      int64_t feeders = 0;
      for (size_t m : row.members) {
        N += static_cast<int64_t>(pairs[m].second.size());
        feeders += pairs[m].second.size() > 1;
      }
      nslots += static_cast<int64_t>(row.members.size());
      multi = multi || feeders > 1;
    }
    const int64_t BT = B * T, nseg = multi ? BT : 0;
    auto host = torch::empty({2 * BT + nseg + 3 * N},
                             torch::TensorOptions().dtype(torch::kInt64).pinned_memory(!dev.is_cpu()));
    int64_t* tk = host.data_ptr<int64_t>();
    int64_t* ps = tk + BT;
    int64_t* sg = ps + BT;  // only when multi
    int64_t* flat = sg + nseg;
    int64_t* target = flat + N;
    int64_t* slot = target + N;
    std::fill(tk, tk + 2 * BT, int64_t{0});
    if (multi) std::fill(sg, sg + BT, int64_t{-1});
    std::vector<size_t> slot_req;
    slot_req.reserve(static_cast<size_t>(nslots));
    int64_t e = 0;
    for (int64_t r = 0; r < B; ++r) {
      const Row& row = rows[start + static_cast<size_t>(r)];
      const auto& ctx = *group_ctx[row.group];
      const int64_t L = static_cast<int64_t>(ctx.size());
      int64_t* trow = tk + r * T;
      int64_t* prow = ps + r * T;
      int64_t* srow = multi ? sg + r * T : nullptr;
      for (int64_t t = 0; t < L; ++t) {
        trow[t] = ctx[static_cast<size_t>(t)], prow[t] = t;
        if (srow) srow[t] = 0;
      }
      int64_t off = L;
      for (size_t k = 0; k < row.members.size(); ++k) {
        const auto& cont = pairs[row.members[k]].second;
        const int64_t nc = static_cast<int64_t>(cont.size());
        const int64_t sl = static_cast<int64_t>(slot_req.size());
        slot_req.push_back(row.members[k]);
        for (int64_t j = 0; j < nc; ++j, ++e) {
          // logits at the last context token, then at each fed continuation token
          flat[e] = r * T + (j == 0 ? L - 1 : off + j - 1);
          target[e] = cont[static_cast<size_t>(j)];
          slot[e] = sl;
        }
        for (int64_t j = 0; j + 1 < nc; ++j) {
          trow[off + j] = cont[static_cast<size_t>(j)];
          prow[off + j] = L + j;
          if (srow) srow[off + j] = static_cast<int64_t>(k) + 1;
        }
        off += nc - 1;
      }
    }
    auto dbuf = host.to(dev, /*non_blocking=*/true);
    auto tokens = dbuf.narrow(0, 0, BT).view({B, T});
    ForwardOptions fo;
    fo.positions = dbuf.narrow(0, BT, BT).view({B, T});
    fo.skip_logits = true;
    if (multi) {
      auto sd = dbuf.narrow(0, 2 * BT, BT).view({B, T});
      auto idx = torch::arange(T, torch::TensorOptions().device(dev).dtype(torch::kInt64));
      auto q = idx.view({1, T, 1}), k = idx.view({1, 1, T});
      auto sq = sd.unsqueeze(2), sk = sd.unsqueeze(1);
      fo.full_mask = ((k <= q) & ((sk == 0) | (sk == sq)) & (sk >= 0)) | (k == q);
    }
    prof_tick("score.pack", t_phase);
    auto out = model_->forward(tokens, fo);
    prof_tick("score.forward", t_phase);
    auto hid = out.final_hidden.reshape({B * T, hidden});
    auto flat_t = dbuf.narrow(0, 2 * BT + nseg, N);
    auto target_t = dbuf.narrow(0, 2 * BT + nseg + N, N);
    auto slot_t = dbuf.narrow(0, 2 * BT + nseg + 2 * N, N);
    // row 0: summed log-probs, row 1: tokens that are not the argmax
    auto acc = torch::zeros({2, nslots}, torch::TensorOptions().device(dev).dtype(torch::kFloat64));
    auto lp_sum = acc.select(0, 0), miss = acc.select(0, 1);
    const int64_t chunk = 4096;
    for (int64_t c0 = 0; c0 < N; c0 += chunk) {
      const int64_t len = std::min(chunk, N - c0);
      auto logits = model_->lm_head(hid.index_select(0, flat_t.narrow(0, c0, len))).to(torch::kFloat32);
      auto tg = target_t.narrow(0, c0, len);
      auto tok_lp = at::log_softmax(logits, -1).gather(1, tg.unsqueeze(1)).squeeze(1);
      auto wrong = (logits.argmax(-1) != tg).to(torch::kFloat64);
      auto sl = slot_t.narrow(0, c0, len);
      lp_sum.index_add_(0, sl, tok_lp.to(torch::kFloat64));
      miss.index_add_(0, sl, wrong);
    }
    auto acc_cpu = acc.cpu();
    const double* lp = acc_cpu.data_ptr<double>();
    const double* ms = lp + nslots;
    for (int64_t sl = 0; sl < nslots; ++sl) {
      size_t i = slot_req[static_cast<size_t>(sl)];
      results[i].logprob = lp[sl];
      results[i].is_greedy = ms[sl] == 0.0;
      results[i].n_tokens = static_cast<int64_t>(pairs[i].second.size());
    }
    prof_tick("score.head", t_phase);
  }
  prof_report("score");
  return results;
}

std::vector<GenerateResult> Engine::generate(const std::vector<GenerateRequest>& reqs) {
  std::vector<TokenGenRequest> tr;
  tr.reserve(reqs.size());
  for (const auto& r : reqs) {
    TokenGenRequest t;
    if (!r.until.empty()) need_tokenizer();
    t.prompt = !r.prompt_ids.empty() ? r.prompt_ids : encode_text(need_tokenizer(), r.prompt, opts_.add_bos);
    if (t.prompt.empty()) t.prompt = {bos_id()};
    t.until = r.until;
    t.max_new_tokens = r.max_new_tokens;
    tr.push_back(std::move(t));
  }
  return generate_tokens(tr);
}

namespace {
// Generated ids decoded on their own lose a leading space (SentencePiece
// strips the dummy prefix of the first piece), which breaks code indentation.
// Decode them after the prompt's last tokens and keep only what they add.
std::string decode_continuation(const Tokenizer& tok, const std::vector<int64_t>& prompt,
                                const std::vector<int64_t>& gen) {
  if (gen.empty()) return std::string();
  const size_t k = std::min<size_t>(prompt.size(), 4);
  std::vector<int64_t> all(prompt.end() - static_cast<std::ptrdiff_t>(k), prompt.end());
  const std::string head = tok.decode(all);
  all.insert(all.end(), gen.begin(), gen.end());
  const std::string both = tok.decode(all);
  if (k > 0 && both.compare(0, head.size(), head) == 0) return both.substr(head.size());
  return tok.decode(gen);
}

// Position of the earliest stop string in text, or npos.
size_t first_stop(const std::string& text, const std::vector<std::string>& until) {
  size_t best = std::string::npos;
  for (const auto& u : until) {
    if (u.empty()) continue;
    size_t p = text.find(u);
    if (p < best) best = p;
  }
  return best;
}
}  // namespace

// Prefills `group` prompts (left-padded to the longest) into cache rows
// `slots`: K/V and positions land in slots [0, P') of those rows, the first
// generated token in next[slot]; host start/wpos describe the valid keys
// [start, wpos) of each row.
void Engine::prefill_into(KVCache& cache, const std::vector<std::vector<int64_t>>& group,
                          const std::vector<int64_t>& slots, std::vector<int64_t>& start, std::vector<int64_t>& wpos,
                          torch::Tensor& next, torch::Tensor& first_out) {
  const auto dev = model_->device();
  const int64_t k = static_cast<int64_t>(group.size());
  int64_t P = 0;
  for (const auto& p : group) P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  auto tokens = torch::zeros({k, P}, torch::kInt64);
  auto am = torch::ones({k, P}, torch::kBool);
  bool any_pad = false;
  {
    auto tk = tokens.accessor<int64_t, 2>();
    auto ma = am.accessor<bool, 2>();
    for (int64_t r = 0; r < k; ++r) {
      const auto& p = group[static_cast<size_t>(r)];
      const int64_t pad = P - static_cast<int64_t>(p.size());
      for (int64_t t = 0; t < static_cast<int64_t>(p.size()); ++t) tk[r][pad + t] = p[static_cast<size_t>(t)];
      for (int64_t t = 0; t < pad; ++t) ma[r][t] = false;
      any_pad = any_pad || pad > 0;
      start[static_cast<size_t>(slots[static_cast<size_t>(r)])] = pad;
      wpos[static_cast<size_t>(slots[static_cast<size_t>(r)])] = P;
    }
  }
  auto amd = am.to(dev);
  auto positions = (amd.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  auto slots_t = torch::tensor(slots, torch::kInt64).to(dev);
  // All rows in slot order 0..k-1 of a cache with exactly k rows: write in place.
  const bool direct = k == cache.pos.size(0) && [&] {
    for (int64_t r = 0; r < k; ++r)
      if (slots[static_cast<size_t>(r)] != r) return false;
    return true;
  }();
  KVCache tmp;
  if (!direct) tmp = model_->make_cache(k, P);
  ForwardOptions fo;
  fo.positions = positions;
  if (any_pad) fo.attention_mask = amd;
  fo.cache = direct ? &cache : &tmp;
  fo.cache_pos = 0;
  fo.skip_logits = true;
  auto out = model_->forward(tokens.to(dev), fo);
  auto first = model_->lm_head(out.final_hidden.select(1, P - 1)).argmax(-1);
  if (!direct) {
    for (size_t l = 0; l < cache.k.size(); ++l) {
      cache.k[l].narrow(2, 0, P).index_copy_(0, slots_t, tmp.k[l]);
      cache.v[l].narrow(2, 0, P).index_copy_(0, slots_t, tmp.v[l]);
    }
    cache.pos.narrow(1, 0, P).index_copy_(0, slots_t, tmp.pos);
  }
  next.index_copy_(0, slots_t, first);
  first_out = first;
  ++stats_.prefill_forwards;
  stats_.prefill_rows += k;
}

// One length group of generate_tokens: `order` (longest prompt first) runs
// with continuous batching in one KV cache sized for its longest prompt.
void Engine::generate_group(const std::vector<TokenGenRequest>& reqs, const std::vector<std::vector<int64_t>>& prompts,
                            const std::vector<size_t>& order, const std::vector<size_t>& longest,
                            std::vector<std::vector<int64_t>>& ids, double& t_phase) {
  const auto dev = model_->device();
  const int64_t ce = opts_.check_every;
  const bool graphs = use_cuda_graphs();
#ifdef BITMERGE_WITH_CUDA
  // Graph capture needs a stream other than the legacy default one; one per device, kept.
  std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
  if (graphs) stream_guard.emplace(engine_stream(dev));
#endif
  const int64_t eos = eos_id();
  const int64_t Pmax = static_cast<int64_t>(prompts[order.front()].size());
  int64_t new_max = 0;
  for (size_t i : order) new_max = std::max(new_max, reqs[i].max_new_tokens);
  // A row writes at most max_new_tokens - 1 + (ce - 1) decode tokens after its
  // prompt before the host sees it finish. With graphs the attention spans a
  // whole number of kKvBucket slots (one graph per rows x bucket).
  const int64_t bucket = graphs ? kKvBucket : 1;
  const int64_t cache_len = round_up(Pmax + new_max + ce, bucket);
  const int64_t R = std::min<int64_t>(gen_rows_for(cache_len), static_cast<int64_t>(order.size()));
  const int64_t prefill_budget =
      dev.is_cpu() ? kCpuTokenBudget
                   : plan_batches(memory_model(model_->config(), model_->dtype() == torch::kFloat32 ? 4 : 2),
                                  free_device_bytes(), cache_len, 1)
                         .prefill_tokens;
  stats_.max_gen_rows = std::max(stats_.max_gen_rows, R);
  KVCache cache = model_->make_cache(R, cache_len);
  const auto i64 = torch::TensorOptions().device(dev).dtype(torch::kInt64);
  // Device state of the decode step, updated in place (a captured graph keeps
  // their addresses): next input token per row, tokens since the last host
  // check (column col_t), and per row the write slot / first valid slot /
  // increment (1 = live row).
  auto tok = torch::zeros({R, 1}, i64);
  auto gen = torch::zeros({R, ce}, i64);
  auto col_t = torch::zeros({1}, i64);
  auto state = torch::zeros({3, R}, i64);
  std::vector<int64_t> start(static_cast<size_t>(R), 0), wpos(static_cast<size_t>(R), 0);
  std::vector<int64_t> slot_req(static_cast<size_t>(R), -1);  // request index, -1 = empty
  std::vector<int64_t> produced(static_cast<size_t>(R), 0);   // tokens written to gen (checked or not)
  size_t queue = 0;
  // One generated token, the way lm-eval's until/max_gen_toks work; true when
  // the request is finished. A new stop-string match ends in the newest token
  // and spans at most `longest` tokens (each decodes to >= 1 byte).
  auto consume_one = [&](size_t ri, int64_t id) {
    const auto& req = reqs[ri];
    ids[ri].push_back(id);
    if (id == eos || static_cast<int64_t>(ids[ri].size()) >= req.max_new_tokens) return true;
    if (longest[ri] > 0) {
      const size_t k = std::min(ids[ri].size(), longest[ri] + 4);
      auto tail = tok_->decode(std::vector<int64_t>(ids[ri].end() - static_cast<std::ptrdiff_t>(k), ids[ri].end()));
      if (first_stop(tail, req.until) != std::string::npos) return true;
    }
    return false;
  };
  // `cnt` new tokens at once: one tail decode covers them all; only when it
  // holds a stop string are they replayed one at a time (same result as
  // consume_one per token, a decode per check instead of per token).
  auto consume = [&](size_t ri, const int64_t* t, int64_t cnt) {
    const auto& req = reqs[ri];
    auto& v = ids[ri];
    const size_t before = v.size();
    bool done = false;
    for (int64_t j = 0; j < cnt && !done; ++j) {
      v.push_back(t[j]);
      done = t[j] == eos || static_cast<int64_t>(v.size()) >= req.max_new_tokens;
    }
    if (longest[ri] == 0) return done;
    const size_t k = std::min(v.size(), v.size() - before + longest[ri] + 4);
    auto tail = tok_->decode(std::vector<int64_t>(v.end() - static_cast<std::ptrdiff_t>(k), v.end()));
    if (first_stop(tail, req.until) == std::string::npos) return done;
    v.resize(before);
    for (int64_t j = 0; j < cnt; ++j)
      if (consume_one(ri, t[j])) return true;
    return false;
  };

  // Fill the given empty slots from the queue; prefills in groups within the token budget.
  // The first token of each prompt comes from its prefill and is consumed on
  // the host right away (one sync per prefill group); a slot whose request is
  // already finished is refilled again.
  auto tok_flat = tok.view({R});
  auto refill = [&](std::vector<int64_t> free_slots) {
    std::sort(free_slots.begin(), free_slots.end());
    size_t f = 0;
    while (f < free_slots.size() && queue < order.size()) {
      std::vector<std::vector<int64_t>> group;
      std::vector<int64_t> slots;
      const int64_t P = static_cast<int64_t>(prompts[order[queue]].size());  // longest of the group (sorted)
      while (f < free_slots.size() && queue < order.size() &&
             (group.empty() || static_cast<int64_t>(group.size() + 1) * P <= prefill_budget)) {
        const size_t ri = order[queue++];
        group.push_back(prompts[ri]);
        slots.push_back(free_slots[f]);
        slot_req[static_cast<size_t>(free_slots[f])] = static_cast<int64_t>(ri);
        produced[static_cast<size_t>(free_slots[f])] = 0;
        ++f;
      }
      torch::Tensor first;
      prefill_into(cache, group, slots, start, wpos, tok_flat, first);
      ++stats_.refills;
      ++stats_.host_syncs;
      auto fh = first.cpu();
      const int64_t* fa = fh.data_ptr<int64_t>();
      for (size_t j = 0; j < slots.size(); ++j) {
        const auto s = static_cast<size_t>(slots[j]);
        produced[s] = 1;
        if (consume_one(static_cast<size_t>(slot_req[s]), fa[j])) {
          slot_req[s] = -1;
          free_slots.push_back(slots[j]);  // reuse within this call
        }
      }
    }
  };
  {
    std::vector<int64_t> all(static_cast<size_t>(R));
    std::iota(all.begin(), all.end(), 0);
    refill(all);
  }
  prof_tick("generate.prefill", t_phase);
  int64_t Rcur = R;
  auto upload = [&]() {  // host row state -> device: one pinned H2D per check, in place
    auto host = torch::empty({3, Rcur}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(!dev.is_cpu()));
    int64_t* h = host.data_ptr<int64_t>();
    for (int64_t s = 0; s < Rcur; ++s) {
      h[s] = wpos[static_cast<size_t>(s)];
      h[Rcur + s] = start[static_cast<size_t>(s)];
      h[2 * Rcur + s] = slot_req[static_cast<size_t>(s)] >= 0 ? 1 : 0;
    }
    state.copy_(host, /*non_blocking=*/true);
    col_t.zero_();
  };
  // One decode step for every row: row s writes its token at slot w[s] and
  // sees keys [start[s], w[s]] (of the first S slots); everything on the
  // device, no host sync, same shapes every step of a (rows, S) pair.
  auto step = [&](int64_t S) {
    auto w_t = state.select(0, 0), start_t = state.select(0, 1), inc_t = state.select(0, 2);
    ForwardOptions so;
    so.row_start = start_t;  // keys [start, w] at positions w - start (fused decode step on CUDA)
    so.cache = &cache;
    so.cache_pos = S - 1;
    so.cache_rows = w_t;
    so.skip_logits = true;
    auto o = model_->forward(tok, so);
    auto nx = model_->lm_head(o.final_hidden.select(1, 0)).argmax(-1, /*keepdim=*/true);  // [R, 1]
    tok.copy_(nx);
    gen.scatter_(1, col_t.view({1, 1}).expand({Rcur, 1}), nx);
    col_t.add_(1);
    w_t.add_(inc_t);
  };
#ifdef BITMERGE_WITH_CUDA
  // CUDA graphs per (rows, S): the first step of a pair runs eagerly (loads
  // kernels, cuBLAS workspaces), the second is captured, later ones replay.
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<at::cuda::CUDAGraph>> graph_of;
  std::set<std::pair<int64_t, int64_t>> warmed;
  std::optional<c10::MempoolId_t> pool;
  bool graphs_ok = graphs;
#endif
  auto run_step = [&](int64_t S) {
#ifdef BITMERGE_WITH_CUDA
    if (graphs_ok) {
      const auto key = std::make_pair(Rcur, S);
      auto it = graph_of.find(key);
      if (it != graph_of.end()) {
        it->second->replay();
        ++stats_.graph_replays;
        return;
      }
      if (warmed.count(key)) {
        if (!pool) pool = at::cuda::graph_pool_handle();
        auto g = std::make_unique<at::cuda::CUDAGraph>();
        c10::cuda::getCurrentCUDAStream().synchronize();
        try {
          g->capture_begin(*pool);
          try {
            step(S);
          } catch (...) {
            try { g->capture_end(); } catch (...) {}
            throw;
          }
          g->capture_end();
        } catch (const std::exception& e) {
          log_warn(std::string("engine: CUDA graph capture failed; decoding without graphs: ") + e.what());
          graphs_ok = false;
          step(S);
          return;
        }
        g->replay();
        ++stats_.graph_captures;
        ++stats_.graph_replays;
        graph_of.emplace(key, std::move(g));
        return;
      }
      warmed.insert(key);
    }
#endif
    step(S);
  };
  upload();
  int64_t col = 0;
  while (true) {
    int64_t live = 0, maxw = 0;
    for (int64_t s = 0; s < Rcur; ++s) {
      live += slot_req[static_cast<size_t>(s)] >= 0;
      maxw = std::max(maxw, wpos[static_cast<size_t>(s)]);
    }
    if (live == 0) break;
    run_step(round_up(maxw + 1, bucket));
    ++stats_.decode_steps;
    ++col;
    bool must_check = col == ce;
    for (int64_t s = 0; s < Rcur; ++s) {
      const int64_t ri = slot_req[static_cast<size_t>(s)];
      if (ri < 0) continue;
      ++wpos[static_cast<size_t>(s)];
      if (++produced[static_cast<size_t>(s)] >= reqs[static_cast<size_t>(ri)].max_new_tokens) must_check = true;
    }
    if (!must_check) continue;
    prof_tick("generate.decode", t_phase);
    ++stats_.host_syncs;
    auto host = gen.narrow(1, 0, col).cpu().contiguous();
    const int64_t* h = host.data_ptr<int64_t>();
    std::vector<int64_t> freed;
    live = 0;
    for (int64_t s = 0; s < Rcur; ++s) {
      const int64_t ri = slot_req[static_cast<size_t>(s)];
      if (ri < 0) continue;
      if (consume(static_cast<size_t>(ri), h + s * col, col)) {
        slot_req[static_cast<size_t>(s)] = -1;
        freed.push_back(s);
      } else {
        ++live;
      }
    }
    prof_tick("generate.check", t_phase);
    if (!freed.empty() && queue < order.size()) {
      refill(freed);
      live = 0;
      for (int64_t s = 0; s < Rcur; ++s) live += slot_req[static_cast<size_t>(s)] >= 0;
      prof_tick("generate.prefill", t_phase);
    }
    if (live == 0 && queue >= order.size()) break;
    // Queue drained: drop empty rows once a quarter of the batch is idle.
    if (queue >= order.size() && (Rcur - live) * 4 >= Rcur) {
      std::vector<int64_t> keep;
      for (int64_t s = 0; s < Rcur; ++s)
        if (slot_req[static_cast<size_t>(s)] >= 0) keep.push_back(s);
      auto idx = torch::tensor(keep, torch::kInt64).to(dev);
      for (auto& t : cache.k) t = t.index_select(0, idx);
      for (auto& t : cache.v) t = t.index_select(0, idx);
      cache.pos = cache.pos.index_select(0, idx);
      tok = tok.index_select(0, idx);
      gen = gen.index_select(0, idx);
      auto pick = [&](std::vector<int64_t>& v) {
        std::vector<int64_t> o;
        for (int64_t s : keep) o.push_back(v[static_cast<size_t>(s)]);
        v = std::move(o);
      };
      pick(start), pick(wpos), pick(slot_req), pick(produced);
      Rcur = static_cast<int64_t>(keep.size());
      state = torch::zeros({3, Rcur}, i64);
      tok_flat = tok.view({Rcur});
#ifdef BITMERGE_WITH_CUDA
      graph_of.clear();  // they hold the old tensors' addresses
      pool.reset();
      warmed.clear();
#endif
    }
    upload();
    col = 0;
  }
  prof_tick("generate.decode", t_phase);
}

std::vector<GenerateResult> Engine::generate_tokens(const std::vector<TokenGenRequest>& reqs) {
  c10::InferenceMode guard;
  const size_t n = reqs.size();
  std::vector<GenerateResult> results(n);
  std::vector<std::vector<int64_t>> prompts(n);
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i) {
    const auto& r = reqs[i];
    if (r.prompt.empty()) fail("request " + std::to_string(i), "empty prompt; give at least one token");
    if (r.max_new_tokens <= 0) continue;
    if (r.max_new_tokens >= max_len_)
      fail("request " + std::to_string(i), "max_new_tokens " + std::to_string(r.max_new_tokens) +
                                               " leaves no room for the prompt in max length " + std::to_string(max_len_));
    prompts[i] = r.prompt;
    const int64_t keep = max_len_ - r.max_new_tokens;
    if (static_cast<int64_t>(prompts[i].size()) > keep)
      prompts[i].erase(prompts[i].begin(), prompts[i].end() - keep);  // keep the end, as lm-eval does
    order.push_back(i);
  }
  for (const auto& r : reqs)
    if (!r.until.empty()) need_tokenizer();
  if (order.empty()) return results;
  // Longest first: the first prefills are the largest, later refills reuse their room.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() > prompts[b].size(); });
  const auto dev = model_->device();
  const int64_t ce = opts_.check_every;
  std::vector<std::vector<int64_t>> ids(n);
  std::vector<size_t> longest(n, 0);
  for (size_t i : order)
    for (const auto& u : reqs[i].until) longest[i] = std::max(longest[i], u.size());
  // Length groups (EngineOptions::length_groups): each with its own cache length and row count.
  std::vector<std::vector<size_t>> groups;
  const bool grouped = opts_.length_groups > 0 || (opts_.length_groups < 0 && dev.is_cuda());
  {
    int64_t new_all = 0;
    for (size_t i : order) new_all = std::max(new_all, reqs[i].max_new_tokens);
    int64_t head = -1;
    for (size_t i : order) {
      const int64_t need = static_cast<int64_t>(prompts[i].size()) + new_all + ce;
      if (groups.empty() || (grouped && 2 * need <= head)) {
        groups.emplace_back();
        head = need;
      }
      groups.back().push_back(i);
    }
  }
  double t_phase = prof_now();
  const double t_start = t_phase;
  const int64_t steps0 = stats_.decode_steps, rows0 = stats_.max_gen_rows;
  stats_.max_gen_rows = 0;
  for (const auto& group : groups) generate_group(reqs, prompts, group, longest, ids, t_phase);
  stats_.gen_groups += static_cast<int64_t>(groups.size());
  const int64_t eos = eos_id();
  for (size_t i : order) {
    auto& res = results[i];
    res.ids = ids[i];
    res.n_tokens = static_cast<int64_t>(res.ids.size());
    std::vector<int64_t> text_ids = res.ids;
    if (!text_ids.empty() && text_ids.back() == eos) text_ids.pop_back();
    res.text = tok_ ? decode_continuation(*tok_, prompts[i], text_ids) : std::string();
    size_t p = first_stop(res.text, reqs[i].until);
    if (p != std::string::npos) res.text.resize(p);
  }
  prof_tick("generate.finish", t_phase);
  if (order.size() >= 64) {  // one line per large call (benchmarks), none per test-sized call
    int64_t toks = 0;
    for (size_t i : order) toks += static_cast<int64_t>(ids[i].size());
    const double sec = prof_now() - t_start;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "generate: %zu requests in %zu length group(s), up to %lld rows, %lld decode steps, %lld tokens in "
                  "%.1f s (%.0f tok/s)",
                  order.size(), groups.size(), static_cast<long long>(stats_.max_gen_rows),
                  static_cast<long long>(stats_.decode_steps - steps0), static_cast<long long>(toks), sec,
                  sec > 0 ? static_cast<double>(toks) / sec : 0.0);
    log_info(buf);
  }
  stats_.max_gen_rows = std::max(stats_.max_gen_rows, rows0);
  prof_report("generate");
  return results;
}

}  // namespace bm
