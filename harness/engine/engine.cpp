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
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"

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
  auto whole = tok.encode(context + continuation, add_bos);
  auto ctx = tok.encode(context, add_bos);
  std::vector<int64_t> cont(whole.begin() + static_cast<std::ptrdiff_t>(std::min(ctx.size(), whole.size())), whole.end());
  return {ctx, cont};
}

Engine::Engine(std::shared_ptr<Transformer> model, std::shared_ptr<Tokenizer> tokenizer, EngineOptions opts,
               std::string model_name)
    : model_(std::move(model)), tok_(std::move(tokenizer)), opts_(std::move(opts)), name_(std::move(model_name)) {
  if (opts_.batch_size < 1) fail("--batch-size", "must be at least 1");
  if (opts_.check_every < 1) opts_.check_every = 1;
  max_len_ = opts_.max_length > 0 ? opts_.max_length : model_->config().max_position_embeddings;
  if (max_len_ < 2) max_len_ = 2;
}

std::unique_ptr<Engine> Engine::load(const std::string& model_dir, const EngineOptions& opts) {
  auto device = parse_device(opts.device);
  auto dtype = parse_dtype_name(opts.dtype, device);
  // Without tokenizer.model only token-id requests work (device scripts use that).
  std::shared_ptr<Tokenizer> tok;
  if (file_exists(model_dir + "/tokenizer.model")) tok = Tokenizer::load_from_model_dir(model_dir);
  auto ck = Checkpoint::open(model_dir);
  auto model = Transformer::from_checkpoint(*ck, device, dtype);
  auto eng = std::make_unique<Engine>(model, tok, opts, model_dir);
  eng->fingerprint_ = ck->fingerprint();
  return eng;
}

const Tokenizer& Engine::need_tokenizer() const {
  if (!tok_) fail(name_ + "/tokenizer.model", "missing; text requests need it (token-id requests do not)");
  return *tok_;
}
int64_t Engine::bos_id() const { return tok_ ? tok_->bos_id() : model_->config().bos_token_id; }
int64_t Engine::eos_id() const { return tok_ ? tok_->eos_id() : model_->config().eos_token_id; }

std::string Engine::description() const {
  std::ostringstream o;
  o << "bitmerge-libtorch model=" << name_;
  if (!fingerprint_.empty()) o << " fingerprint=" << fingerprint_;
  o << " device=" << model_->device().str()
    << " dtype=" << dtype_label(model_->dtype()) << " add_bos=" << (opts_.add_bos ? "true" : "false")
    << " max_length=" << max_len_ << " tokenization=lm-eval(whole string encoded, split at context length,"
    << " trailing context whitespace moved to continuation) generation=greedy";
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
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(opts_.batch_size)) {
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(opts_.batch_size));
    const int64_t B = static_cast<int64_t>(end - start);
    const int64_t T = std::max<int64_t>(rows[start].length, 1);
    auto tokens = torch::zeros({B, T}, torch::kInt64);
    auto positions = torch::zeros({B, T}, torch::kInt64);
    auto seg = torch::full({B, T}, -1, torch::kInt64);
    auto tk = tokens.accessor<int64_t, 2>();
    auto ps = positions.accessor<int64_t, 2>();
    auto sg = seg.accessor<int64_t, 2>();
    std::vector<int64_t> flat, target, slot;
    std::vector<size_t> slot_req;
    bool multi = false;
    for (int64_t r = 0; r < B; ++r) {
      const Row& row = rows[start + static_cast<size_t>(r)];
      const auto& ctx = *group_ctx[row.group];
      const int64_t L = static_cast<int64_t>(ctx.size());
      for (int64_t t = 0; t < L; ++t) tk[r][t] = ctx[static_cast<size_t>(t)], ps[r][t] = t, sg[r][t] = 0;
      multi = multi || row.members.size() > 1;
      int64_t off = L;
      for (size_t k = 0; k < row.members.size(); ++k) {
        const auto& cont = pairs[row.members[k]].second;
        const int64_t nc = static_cast<int64_t>(cont.size());
        const int64_t s = static_cast<int64_t>(slot_req.size());
        slot_req.push_back(row.members[k]);
        for (int64_t j = 0; j < nc; ++j) {
          // logits at the last context token, then at each fed continuation token
          flat.push_back(r * T + (j == 0 ? L - 1 : off + j - 1));
          target.push_back(cont[static_cast<size_t>(j)]);
          slot.push_back(s);
        }
        for (int64_t j = 0; j + 1 < nc; ++j) {
          tk[r][off + j] = cont[static_cast<size_t>(j)];
          ps[r][off + j] = L + j;
          sg[r][off + j] = static_cast<int64_t>(k) + 1;
        }
        off += nc - 1;
      }
    }
    ForwardOptions fo;
    fo.positions = positions.to(dev);
    fo.skip_logits = true;
    if (multi) {
      auto sd = seg.to(dev);
      auto idx = torch::arange(T, torch::TensorOptions().device(dev).dtype(torch::kInt64));
      auto q = idx.view({1, T, 1}), k = idx.view({1, 1, T});
      auto sq = sd.unsqueeze(2), sk = sd.unsqueeze(1);
      fo.full_mask = ((k <= q) & ((sk == 0) | (sk == sq)) & (sk >= 0)) | (k == q);
    }
    auto out = model_->forward(tokens.to(dev), fo);
    auto hid = out.final_hidden.reshape({B * T, hidden});
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    auto flat_t = torch::from_blob(flat.data(), {static_cast<int64_t>(flat.size())}, i64).to(dev);
    auto target_t = torch::from_blob(target.data(), {static_cast<int64_t>(target.size())}, i64).to(dev);
    auto slot_t = torch::from_blob(slot.data(), {static_cast<int64_t>(slot.size())}, i64).to(dev);
    const int64_t nslots = static_cast<int64_t>(slot_req.size());
    auto lp_sum = torch::zeros({nslots}, torch::TensorOptions().device(dev).dtype(torch::kFloat64));
    auto miss = torch::zeros({nslots}, torch::TensorOptions().device(dev).dtype(torch::kInt64));
    const int64_t N = flat_t.size(0), chunk = 4096;
    for (int64_t c0 = 0; c0 < N; c0 += chunk) {
      const int64_t len = std::min(chunk, N - c0);
      auto logits = model_->lm_head(hid.index_select(0, flat_t.narrow(0, c0, len))).to(torch::kFloat32);
      auto tg = target_t.narrow(0, c0, len);
      auto tok_lp = at::log_softmax(logits, -1).gather(1, tg.unsqueeze(1)).squeeze(1);
      auto wrong = (logits.argmax(-1) != tg).to(torch::kInt64);
      auto sl = slot_t.narrow(0, c0, len);
      lp_sum.index_add_(0, sl, tok_lp.to(torch::kFloat64));
      miss.index_add_(0, sl, wrong);
    }
    auto lp_cpu = lp_sum.cpu();
    auto miss_cpu = miss.cpu();
    for (int64_t s = 0; s < nslots; ++s) {
      size_t i = slot_req[static_cast<size_t>(s)];
      results[i].logprob = lp_cpu[s].item<double>();
      results[i].is_greedy = miss_cpu[s].item<int64_t>() == 0;
      results[i].n_tokens = static_cast<int64_t>(pairs[i].second.size());
    }
  }
  return results;
}

std::vector<GenerateResult> Engine::generate(const std::vector<GenerateRequest>& reqs) {
  std::vector<TokenGenRequest> tr;
  tr.reserve(reqs.size());
  for (const auto& r : reqs) {
    TokenGenRequest t;
    if (!r.until.empty()) need_tokenizer();
    t.prompt = !r.prompt_ids.empty() ? r.prompt_ids : need_tokenizer().encode(r.prompt, opts_.add_bos);
    if (t.prompt.empty()) t.prompt = {bos_id()};
    t.until = r.until;
    t.max_new_tokens = r.max_new_tokens;
    tr.push_back(std::move(t));
  }
  return generate_tokens(tr);
}

namespace {
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
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() > prompts[b].size(); });
  const auto dev = model_->device();
  const int64_t eos = eos_id();
  for (const auto& r : reqs)
    if (!r.until.empty()) need_tokenizer();
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(opts_.batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(opts_.batch_size));
    const int64_t B = static_cast<int64_t>(end - start);
    const int64_t P = static_cast<int64_t>(prompts[order[start]].size());
    int64_t max_new = 0;
    for (size_t j = start; j < end; ++j) max_new = std::max(max_new, reqs[order[j]].max_new_tokens);
    max_new = std::min(max_new, max_len_ - 1);
    auto tokens = torch::zeros({B, P}, torch::kInt64);
    auto am = torch::ones({B, P + max_new}, torch::kBool);
    bool any_pad = false;
    {
      auto tk = tokens.accessor<int64_t, 2>();
      auto ma = am.accessor<bool, 2>();
      for (int64_t r = 0; r < B; ++r) {
        const auto& p = prompts[order[start + static_cast<size_t>(r)]];
        const int64_t pad = P - static_cast<int64_t>(p.size());
        for (int64_t t = 0; t < static_cast<int64_t>(p.size()); ++t) tk[r][pad + t] = p[static_cast<size_t>(t)];
        for (int64_t t = 0; t < pad; ++t) ma[r][t] = false;
        any_pad = any_pad || pad > 0;
      }
    }
    am = am.to(dev);
    auto pmask = am.narrow(1, 0, P);
    auto positions = (pmask.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
    KVCache cache = model_->make_cache(B, P + max_new);
    ForwardOptions fo;
    fo.positions = positions;
    if (any_pad) fo.attention_mask = pmask;
    fo.cache = &cache;
    fo.cache_pos = 0;
    fo.skip_logits = true;
    auto out = model_->forward(tokens.to(dev), fo);
    auto next = model_->lm_head(out.final_hidden.select(1, P - 1)).argmax(-1);
    auto pos_last = positions.select(1, P - 1);
    auto gen = torch::zeros({B, max_new}, torch::TensorOptions().device(dev).dtype(torch::kInt64));
    std::vector<std::vector<int64_t>> ids(static_cast<size_t>(B));
    std::vector<bool> done(static_cast<size_t>(B), false);
    std::vector<int64_t> live(static_cast<size_t>(B));  // current row -> row of this batch
    std::iota(live.begin(), live.end(), 0);
    int64_t step = 0, checked = 0, n_done = 0, Bcur = B;
    while (true) {
      gen.select(1, step).copy_(next);
      ++step;
      if (step % opts_.check_every == 0 || step == max_new) {
        auto host = gen.narrow(1, checked, step - checked).cpu();
        auto h = host.accessor<int64_t, 2>();
        for (int64_t cur = 0; cur < Bcur; ++cur) {
          const size_t ri = static_cast<size_t>(live[static_cast<size_t>(cur)]);
          const auto& req = reqs[order[start + ri]];
          size_t longest = 0;
          for (const auto& u : req.until) longest = std::max(longest, u.size());
          for (int64_t j = 0; j < step - checked && !done[ri]; ++j) {
            const int64_t id = h[cur][j];
            ids[ri].push_back(id);
            bool stop = id == eos || static_cast<int64_t>(ids[ri].size()) >= req.max_new_tokens;
            if (longest > 0 && id != eos) {
              // A new match must end in the newest token and spans at most
              // `longest` tokens (each decodes to >= 1 byte): decode a tail.
              const size_t k = std::min(ids[ri].size(), longest + 4);
              auto tail = tok_->decode(std::vector<int64_t>(ids[ri].end() - static_cast<std::ptrdiff_t>(k), ids[ri].end()));
              if (first_stop(tail, req.until) != std::string::npos) stop = true;
            }
            if (stop) done[ri] = true, ++n_done;
          }
        }
        checked = step;
        if (n_done == B) break;
        // Drop finished rows once a quarter of the batch is idle.
        int64_t idle = 0;
        for (int64_t cur = 0; cur < Bcur; ++cur) idle += done[static_cast<size_t>(live[static_cast<size_t>(cur)])];
        if (step < max_new && idle * 4 >= Bcur) {
          std::vector<int64_t> keep_cur, keep_rows;
          for (int64_t cur = 0; cur < Bcur; ++cur)
            if (!done[static_cast<size_t>(live[static_cast<size_t>(cur)])])
              keep_cur.push_back(cur), keep_rows.push_back(live[static_cast<size_t>(cur)]);
          auto idx = torch::tensor(keep_cur, torch::kInt64).to(dev);
          for (auto& t : cache.k) t = t.index_select(0, idx);
          for (auto& t : cache.v) t = t.index_select(0, idx);
          cache.pos = cache.pos.index_select(0, idx);
          am = am.index_select(0, idx);
          pos_last = pos_last.index_select(0, idx);
          next = next.index_select(0, idx);
          gen = gen.index_select(0, idx);
          live = keep_rows;
          Bcur = static_cast<int64_t>(live.size());
        }
      }
      if (step >= max_new) break;
      pos_last = pos_last + 1;
      ForwardOptions so;
      so.positions = pos_last.view({Bcur, 1});
      if (any_pad) so.attention_mask = am.narrow(1, 0, P + step);
      so.cache = &cache;
      so.cache_pos = P + step - 1;
      so.skip_logits = true;
      auto o = model_->forward(next.view({Bcur, 1}), so);
      next = model_->lm_head(o.final_hidden.select(1, 0)).argmax(-1);
    }
    for (int64_t r = 0; r < B; ++r) {
      const size_t ri = static_cast<size_t>(r);
      auto& res = results[order[start + ri]];
      res.ids = ids[ri];
      res.n_tokens = static_cast<int64_t>(res.ids.size());
      std::vector<int64_t> text_ids = res.ids;
      if (!text_ids.empty() && text_ids.back() == eos) text_ids.pop_back();
      res.text = tok_ ? tok_->decode(text_ids) : std::string();
      size_t p = first_stop(res.text, reqs[order[start + ri]].until);
      if (p != std::string::npos) res.text.resize(p);
    }
  }
  return results;
}

}  // namespace bm
