#include "harness/runner/model_backend.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/engine/engine.hpp"
#include "harness/fetch/fetch.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/tokenizer.hpp"
#include "harness/models/transformer.hpp"
#include "harness/runner/cache.hpp"
#include "harness/runner/router.hpp"
#include "harness/runner/runner.hpp"
#include "harness/train/bitdelta.hpp"
#include "merging/api.hpp"
#include "merging/packed_format.hpp"
#include "merging/routed_bank.hpp"
#include "merging/vocab.hpp"
#include "tasks/common/eval.hpp"
#include "tasks/common/task.hpp"

namespace bm::runner {
namespace {

using nlohmann::json;

std::string device_name() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

std::string dtype_name(const Experiment& e) { return device_name() == "cpu" ? "float32" : e.family.dtype; }

std::string model_dir(const Experiment& e, const std::string& name) {
  const ModelRef& m = name == "base" ? e.family.base : *e.family.expert(name);
  return resolve_model_dir(e.family, m, repo_root());
}

// The registered task that evaluates `bench`: its own, or the one a Subset option picks (math_subset).
std::string task_name(const Experiment& e, const std::string& bench) {
  for (auto& o : make_task(bench)->options())
    if (o.effect == TaskOption::Effect::Subset) return o.subset_tasks.at(e.eval.task_options.at(o.key));
  return bench;
}

EvalOptions eval_options(const Experiment& e, const std::string& tmpl) {
  EvalOptions o;
  o.data_dir = family_data_dir(e.family);
  o.limit = e.eval.limit;
  o.max_new_tokens = e.eval.max_new_tokens;
  o.progress = true;
  if (tmpl != "none" && tmpl.rfind("routed(", 0) != 0) o.templates["*"] = tmpl;
  // Without an experiment template, a benchmark's Template option (gsm8k_prompt) picks its prompt.
  if (tmpl == "none")
    for (auto& b : e.benchmarks)
      for (auto& opt : make_task(b)->options())
        if (opt.effect == TaskOption::Effect::Template) o.templates[task_name(e, b)] = e.eval.task_options.at(opt.key);
  return o;
}

EngineOptions engine_options(const Experiment& e) {
  EngineOptions o;
  o.device = device_name();
  o.dtype = dtype_name(e);
  o.batch_size = e.eval.batch_size;
  o.add_bos = eval_add_bos(e).add_bos;
  o.tokenizer_fallback = model_dir(e, "base");  // experts that ship tokenizer.json only
  return o;
}

// Scheme bitdelta (harness/train/bitdelta.hpp): the scales are fitted once per
// expert and position on the family's calibration text, the expert's own
// training corpus <data_dir>/corpus/<domain>.jsonl, with the experiment's
// [bitdelta] settings (default 64 rows x 128 tokens, BitDeltaConfig), and kept as
// a packed file under <results_dir>/bitdelta/ (non-default settings: their hash in the name).
std::string bitdelta_file(const Experiment& e, const std::string& x, const Compression& c) {
  auto expert = Checkpoint::open(model_dir(e, x));
  const json fit_key = bitdelta_key(e);
  const std::string out = e.results_dir + "/bitdelta/" + x + "-" + position_name(c.position) + "-" +
                          expert->fingerprint().substr(0, 12) +
                          (fit_key.is_null() ? "" : "-" + bm::sha256_hex(fit_key.dump()).substr(0, 8)) + ".safetensors";
  if (file_exists(out)) return out;
  const std::string calib = family_data_dir(e.family) + "/corpus/" + e.family.expert(x)->domain + ".jsonl";
  if (!file_exists(calib))
    fail(e.file + ": expert " + x, "scheme bitdelta fits its scales on calibration text " + calib +
                                       ", which is missing; use a family with a corpus (the mini family) or write the "
                                       "file with `bitmerge compress --position " + compression_name(c) + " --calib FILE`");
  auto base = Checkpoint::open(model_dir(e, "base"));
  auto bm_ = Transformer::load(model_dir(e, "base"), torch::kCPU, torch::kFloat32);
  auto em = Transformer::load(model_dir(e, x), torch::kCPU, torch::kFloat32);
  auto tok = Tokenizer::load_from_model_dir(model_dir(e, "base"));
  const BitDeltaSettings& s = e.bitdelta;
  auto fit = train::fit_bitdelta_scales(*bm_, *em, c.position,
                                        train::calibration_rows(*tok, calib, s.calib.rows, s.calib.seq_len), s.fit);
  log_info("bitdelta " + x + " " + position_name(c.position) + ": logit MSE " + std::to_string(fit.loss_init) +
           " (alpha = mean|delta|) -> " + std::to_string(fit.loss_final) + " on " + calib);
  make_dirs(e.results_dir + "/bitdelta");
  merging::write_packed_task_vector(*base, *expert, c, x, out, &fit.fitted);
  return out;
}

// The merge that builds variant `v` (routed to `route` for routing / onebit).
merging::MergeSpec merge_spec(const Experiment& e, const Variant& v, const std::string& route) {
  merging::MergeSpec s;
  s.base = model_dir(e, "base");
  s.device = device_name();
  std::vector<std::string> experts = v.experts;
  if (v.single_expert()) experts = {v.expert};
  for (auto& x : experts) {
    merging::ExpertSpec es;
    es.name = x;
    es.path = model_dir(e, x);
    std::string pos = v.kind == "compressed" ? v.position : (v.compress.count(x) ? v.compress.at(x) : "none");
    if (pos != "none") es.compress = parse_compression(pos, e.file + ": variants." + v.name);  // position[:scheme]
    if (es.compress && es.compress->scheme == Scheme::BitDelta) es.path = bitdelta_file(e, x, *es.compress);
    s.experts.push_back(es);
  }
  if (v.single_expert()) {
    s.method = "task_arithmetic";  // base + 1.0 * (compressed) task vector = the (1-bit) expert
    s.params["lambda"] = "1";
  } else if (const merging::MethodVocab* m = merging::grid_method(v.kind, v.method)) {
    s.method = m->name;  // the kind's method (merging/vocab.cpp): merge's by name or alias, routing, onebit
    if (m->needs_route) s.route = route;
  }
  auto num = [](double d) {
    if (d == static_cast<double>(static_cast<int64_t>(d))) return std::to_string(static_cast<int64_t>(d));
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", d);
    return std::string(b);
  };
  if (!v.single_expert())
    for (auto& [k, val] : v.params) s.params[k] = num(val);
  for (auto& [x, w] : v.weights) s.params[x + ".weight"] = num(w);
  return s;
}

std::unique_ptr<LanguageModel> build_model(const Experiment& e, const Variant& v, const std::string& route) {
  EngineOptions eo = engine_options(e);
  // A full-precision HF expert (or the base) is loaded as is.
  if (v.kind == "base") return Engine::load(model_dir(e, "base"), eo);
  bool full_expert = v.kind == "expert" || (v.kind == "compressed" && v.position == "none");
  if (full_expert && e.family.expert(v.expert)->format == "hf") return Engine::load(model_dir(e, v.expert), eo);
  if (v.kind == "routing" && e.family.expert(route)->format == "hf") return Engine::load(model_dir(e, route), eo);
  merging::Merger m(merge_spec(e, v, route));
  for (auto& n : m.notes()) log_info(v.name + ": " + n);
  std::map<std::string, torch::Tensor> w;
  bm::Progress bar("build " + v.name + (route.empty() ? "" : " -> " + route), static_cast<int64_t>(m.names().size()));
  for (auto& n : m.names()) {
    w[n] = m.tensor(n);
    bar.advance(1);
  }
  bar.finish();
  torch::Device dev = parse_device(eo.device);
  auto model = std::make_shared<Transformer>(m.config(), std::move(w), dev, parse_dtype_name(eo.dtype, dev));
  auto tok = Tokenizer::load_from_model_dir(m.tokenizer_dir());
  return std::make_unique<Engine>(model, tok, eo, v.name + (route.empty() ? "" : "->" + route));
}

// Routed variants (routing, onebit) from a RoutedBank: base, packed 1-bit
// deltas and the dense parts are read once and held on the evaluation device;
// each route's weights are rebuilt in place in the one live model (equal to
// the Merger's merge, see merging/routed_bank.hpp). BITMERGE_ROUTED_BANK=0
// turns it off (each route merged from disk, as build_model does); trim=global
// is not supported by the bank and falls back too. On CUDA the inputs stay in
// pinned host memory when they would take more than half of the free memory.
class BankedModel {
 public:
  static std::unique_ptr<BankedModel> open(const Experiment& e, const Variant& v) {
    if (const char* env = std::getenv("BITMERGE_ROUTED_BANK"); env && std::string(env) == "0") return nullptr;
    auto spec = merge_spec(e, v, v.experts.front());
    std::string place = "device";
    if (spec.device == "cuda") {  // half of what is free, counting blocks the allocator caches (the router's base)
      const int64_t free = device_free_bytes(torch::Device(torch::kCUDA, 0));
      if (merging::routed_bank_bytes(spec) > free / 2) place = "host";
    }
    auto b = std::make_unique<BankedModel>();
    try {
      b->bank_ = std::make_unique<merging::RoutedBank>(spec, place);
    } catch (const bm::Error& err) {
      log_info(v.name + ": routed bank not used (" + std::string(err.what()) + "); building each route from disk");
      return nullptr;
    }
    log_info(v.name + ": routed bank holds " + std::to_string(b->bank_->bytes() >> 20) + " MiB on " +
             (place == "host" ? std::string("pinned host memory") : spec.device));
    b->eo_ = engine_options(e);
    b->name_ = v.name;
    return b;
  }
  // The live model routed to `expert` (built on first use, then rebuilt in place).
  LanguageModel& route(const std::string& expert) {
    auto t0 = std::chrono::steady_clock::now();
    const bool first = !engine_;
    if (!engine_) {
      torch::Device dev = parse_device(eo_.device);
      std::map<std::string, torch::Tensor> w;
      for (auto& n : bank_->names()) w[n] = bank_->tensor(expert, n);
      model_ = std::make_shared<Transformer>(bank_->config(), std::move(w), dev, parse_dtype_name(eo_.dtype, dev));
      auto tok = Tokenizer::load_from_model_dir(bank_->tokenizer_dir());
      engine_ = std::make_unique<Engine>(model_, tok, eo_, name_ + " (routed bank)");
    } else {
      bank_->materialize(expert, model_->named_parameters());
    }
    if (model_->device().is_cuda()) torch::cuda::synchronize();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
    log_info(name_ + ": routed to " + expert + (first ? " (model built)" : " (weights rebuilt in place)") + " in " + buf);
    return *engine_;
  }

 private:
  std::unique_ptr<merging::RoutedBank> bank_;
  std::shared_ptr<Transformer> model_;
  std::unique_ptr<Engine> engine_;
  EngineOptions eo_;
  std::string name_;
};

// Headline score in percent, honouring the experiment's metric choices.
CellOutcome outcome_of(const Experiment& e, const std::string& bench, const TaskResult& r) {
  CellOutcome o;
  std::string metric = r.headline_metric;
  for (auto& opt : make_task(bench)->options())  // hellaswag_metric, truthfulqa_metric
    if (opt.effect == TaskOption::Effect::Metric && r.metrics.contains(e.eval.task_options.at(opt.key)))
      metric = e.eval.task_options.at(opt.key);
  if (!r.metrics.contains(metric))
    bm::fail(bench, "task result has no metric '" + metric + "'; check the task's metric names");
  o.metric = metric;
  o.score = 100.0 * r.metrics[metric].get<double>();
  o.n_items = static_cast<int64_t>(r.samples.size());
  o.extra = task_result_json(r);
  for (auto& s : r.samples) o.samples.push_back(sample_to_json(s));
  return o;
}

// A LanguageModel that answers nothing useful: used to read each item's prompt.
class PromptRecorder : public LanguageModel {
 public:
  std::vector<LoglikelihoodResult> loglikelihood(const std::vector<LoglikelihoodRequest>& r) override {
    return std::vector<LoglikelihoodResult>(r.size());
  }
  std::vector<GenerateResult> generate(const std::vector<GenerateRequest>& r) override {
    return std::vector<GenerateResult>(r.size());
  }
};

json partial_json(const TaskResult& r) {
  json s = json::array();
  for (auto& x : r.samples) s.push_back(sample_to_json(x));
  json files = json::array();
  for (auto& [p, h] : r.data_files) files.push_back({p, h});
  return {{"task", r.task},         {"version", r.version},         {"template", r.template_name},
          {"headline", r.headline_metric}, {"note", r.headline_note}, {"data_format", r.data_format},
          {"data_files", files},    {"metrics", r.metrics},         {"seconds", r.seconds},
          {"samples", s}};
}

TaskResult partial_from_json(const json& j) {
  TaskResult r;
  r.task = j.at("task");
  r.version = j.at("version");
  r.template_name = j.at("template");
  r.headline_metric = j.at("headline");
  r.headline_note = j.value("note", "");
  r.data_format = j.value("data_format", "");
  for (auto& f : j.at("data_files")) r.data_files.emplace_back(f[0].get<std::string>(), f[1].get<std::string>());
  r.metrics = j.at("metrics");
  r.seconds = j.value("seconds", 0.0);
  for (auto& s : j.at("samples")) r.samples.push_back(sample_from_json(s));
  return r;
}

class ModelBackend : public Backend {
 public:
  void evaluate_variant(const Experiment& e, const Variant& v, const std::vector<const Cell*>& cells,
                        const std::function<void(const Cell&, const CellOutcome&)>& done) override {
    if (v.routed()) return evaluate_routed(e, v, cells, done);
    auto lm = build_model(e, v, "");
    description_ = lm->description();
    note_checkpoints(e);
    for (const Cell* c : cells) {
      EvalOptions eo = eval_options(e, variant_template(e, v));
      auto rs = evaluate(*lm, {task_name(e, c->benchmark)}, eo);
      done(*c, outcome_of(e, c->benchmark, rs.at(0)));
    }
  }

  json provenance() const override {
    json p;
    p["libraries"]["torch"] = TORCH_VERSION;
    p["device"] = device_name();
    if (device_name() == "cuda") {
      std::string out;
      if (FILE* f = ::popen("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null", "r")) {
        char buf[256];
        while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
        ::pclose(f);
      }
      p["gpu"] = out;
    }
    if (!description_.empty()) p["last_model"] = description_;
    if (!checkpoints_.empty()) p["checkpoint_decisions"] = checkpoints_;
    if (!bos_.is_null()) p["add_bos"] = bos_;
    return p;
  }

 private:
  std::string description_;
  json checkpoints_;  // per model of the family: the decision taken for each quirk (docs/checkpoints.md)
  json bos_;          // {"value", "source"}: the BOS choice of every text request
  void note_checkpoints(const Experiment& e) {
    if (bos_.is_null()) {
      auto b = eval_add_bos(e);
      bos_ = {{"value", b.add_bos}, {"source", b.source}};
    }
    if (!checkpoints_.empty()) return;
    const std::string base = model_dir(e, "base");
    checkpoints_["base"] = checkpoint_decisions(base, "");
    for (auto& x : e.family.experts) {
      const std::string dir = model_dir(e, x.name);
      if (bm::file_exists(dir + "/config.json") || bm::file_exists(dir + "/adapter_config.json"))
        checkpoints_[x.name] = checkpoint_decisions(dir, base);
    }
  }

  // Domain index per expert for the router.
  std::vector<std::string> domains(const Experiment& e, const Variant& v) const {
    std::vector<std::string> d;
    for (auto& x : v.experts) d.push_back(e.family.expert(x)->domain);
    return d;
  }

  Router load_or_train_router(const Experiment& e, const Variant& v, Transformer& base, const Tokenizer& tok) {
    // The prompts are part of the key: a regenerated data directory retrains the router.
    auto data = router_training_data(family_data_dir(e.family), domains(e, v), e.router.train_per_domain, e.seed);
    std::string texts;
    for (size_t i = 0; i < data.texts.size(); ++i) texts += std::to_string(data.labels[i]) + "\n" + data.texts[i] + "\n";
    json key = {{"router", variant_spec(e, v, true)["router"]},
                {"base", model_fingerprint(e.family, e.family.base)},
                {"domains", domains(e, v)},
                {"seed", e.seed},
                {"data_dir", family_data_dir(e.family)},
                {"prompts", bm::sha256_hex(texts).substr(0, 16)},
                {"trainer", "portable-adam-1"}};  // the router's optimizer (harness/train/optim.hpp)
    std::string h = bm::sha256_hex(key.dump()).substr(0, 16);
    std::string dir = e.results_dir + "/router";
    bm::make_dirs(dir);
    FileLock lock(dir, "router-" + h);
    lock.lock();
    std::string path = dir + "/router-" + h + ".pt";
    if (bm::file_exists(path)) return Router::load(path);
    log_info("router: " + std::to_string(data.texts.size()) + " training prompts, features at layer " +
             std::to_string(e.router.layer));
    auto x = router_features(base, tok, data.texts, e.router.layer);
    auto y = torch::tensor(data.labels, torch::kLong);
    Router r(x.size(1), e.router.hidden, static_cast<int64_t>(v.experts.size()), e.seed);
    double acc = r.train(x, y, e.router.epochs, e.router.lr);
    r.save(path);
    bm::write_file_atomic(dir + "/router-" + h + ".json",
                          json{{"key", key}, {"train_accuracy", acc}, {"n_train", data.texts.size()}}.dump(1) + "\n");
    log_info("router: training accuracy " + std::to_string(acc));
    return r;
  }

  void evaluate_routed(const Experiment& e, const Variant& v, const std::vector<const Cell*>& cells,
                       const std::function<void(const Cell&, const CellOutcome&)>& done) {
    CellStore store(e.cell_dir());
    std::string pdir = store.dir() + "/partial";
    bm::make_dirs(pdir);
    auto tmpl_of = [&](const std::string& x) {
      return e.eval.template_mode == "per-expert" ? e.family.expert(x)->template_name : std::string("none");
    };
    // 1. Route every item of every cell.
    std::map<std::string, std::map<std::string, std::vector<std::string>>> groups;  // cell key -> expert -> ids
    std::map<std::string, double> router_acc;
    {
      std::unique_ptr<Router> router;
      std::shared_ptr<Transformer> base;
      std::shared_ptr<Tokenizer> tok;
      if (e.router.mode == "trained") {
        torch::Device dev = parse_device(device_name());
        base = Transformer::load(model_dir(e, "base"), dev, parse_dtype_name(dtype_name(e), dev));
        tok = Tokenizer::load_from_model_dir(model_dir(e, "base"));
        router = std::make_unique<Router>(load_or_train_router(e, v, *base, *tok));
      }
      for (const Cell* c : cells) {
        PromptRecorder rec;
        EvalOptions eo = eval_options(e, "none");
        eo.progress = false;
        auto rs = evaluate(rec, {task_name(e, c->benchmark)}, eo);
        std::vector<std::string> ids, prompts;
        for (auto& s : rs.at(0).samples) ids.push_back(s.id), prompts.push_back(s.prompt);
        int64_t oracle = -1;
        auto dom = e.router.domain_of.find(c->benchmark);
        for (size_t k = 0; k < v.experts.size(); ++k)
          if (dom != e.router.domain_of.end() && e.family.expert(v.experts[k])->domain == dom->second)
            oracle = static_cast<int64_t>(k);
        std::vector<int64_t> pick(ids.size(), oracle);
        if (router) pick = router->predict(router_features(*base, *tok, prompts, e.router.layer));
        size_t right = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
          if (pick[i] < 0) bm::fail(e.file, "oracle routing: benchmark " + c->benchmark + " maps to no expert; set router.domain_of");
          groups[c->key][v.experts[static_cast<size_t>(pick[i])]].push_back(ids[i]);
          right += pick[i] == oracle;
        }
        if (oracle >= 0 && !ids.empty()) router_acc[c->key] = 100.0 * static_cast<double>(right) / static_cast<double>(ids.size());
      }
    }
    // 2. One model per routed expert; evaluate each cell's group on it (saved, so a kill loses one group).
    std::unique_ptr<BankedModel> banked;
    bool bank_tried = false;
    for (auto& x : v.experts) {
      std::vector<const Cell*> need;
      for (const Cell* c : cells)
        if (groups[c->key].count(x) && !bm::file_exists(pdir + "/" + c->key + "-" + x + ".json")) need.push_back(c);
      if (need.empty()) continue;
      if (!bank_tried) banked = BankedModel::open(e, v), bank_tried = true;
      std::unique_ptr<LanguageModel> own;
      LanguageModel* lm = nullptr;
      if (banked) {
        lm = &banked->route(x);
      } else {
        own = build_model(e, v, x);
        lm = own.get();
      }
      description_ = lm->description();
      note_checkpoints(e);
      for (const Cell* c : need) {
        EvalOptions eo = eval_options(e, tmpl_of(x));
        std::string t = task_name(e, c->benchmark);
        eo.item_ids[t] = groups[c->key][x];
        auto rs = evaluate(*lm, {t}, eo);
        bm::write_file_atomic(pdir + "/" + c->key + "-" + x + ".json", partial_json(rs.at(0)).dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
      }
    }
    // 3. Combine the groups of each cell into one result.
    for (const Cell* c : cells) {
      std::vector<TaskResult> parts;
      json routed = json::object();
      for (auto& [x, ids] : groups[c->key]) {
        parts.push_back(partial_from_json(json::parse(bm::read_text_file(pdir + "/" + c->key + "-" + x + ".json"))));
        // Per-expert templates differ between groups: the cell's template is the routed map.
        if (e.eval.template_mode == "per-expert") parts.back().template_name = variant_template(e, v);
        routed[x] = ids.size();
      }
      TaskResult all = combine_results(parts);
      CellOutcome o = outcome_of(e, c->benchmark, all);
      o.extra["routed_items"] = routed;
      o.extra["router_mode"] = e.router.mode;
      if (router_acc.count(c->key)) o.extra["router_accuracy"] = router_acc[c->key];
      done(*c, o);
    }
  }
};

}  // namespace

void fetch_missing_checkpoints(const Experiment& e) {
  std::set<std::string> needed = {"base"};
  for (auto& v : e.variants) {
    if (!v.expert.empty()) needed.insert(v.expert);
    for (auto& x : v.experts) needed.insert(x);
  }
  for (auto& n : needed) {
    const ModelRef& m = n == "base" ? e.family.base : *e.family.expert(n);
    std::string dir = resolve_model_dir(e.family, m, repo_root());
    std::string probe = dir + (m.format == "lora" ? "/adapter_config.json" : "/config.json");
    if (bm::file_exists(probe) || m.hf_id.empty()) continue;
    log_info("fetching " + m.hf_id + " into " + dir);
    fetch_hf_model(m.hf_id, m.revision.empty() ? "main" : m.revision, dir);
  }
}

void register_model_backend() {
  register_backend("model", [](const Experiment&) -> std::unique_ptr<Backend> { return std::make_unique<ModelBackend>(); });
  set_checkpoint_fetcher(fetch_missing_checkpoints);
}

}  // namespace bm::runner
