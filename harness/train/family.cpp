#include "harness/train/family.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <toml++/toml.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/models/cpu_numerics.hpp"
#include "harness/train/tokenizer_train.hpp"

namespace bm::train {
namespace {

// Changes whenever the trainer's arithmetic changes, so cached families retrain.
constexpr const char* kTrainerVersion = "trainer-3";  // 3: portable Adam (optim.hpp)

struct TomlReader {
  const toml::table& t;
  std::string file;
  const toml::table* sub(const std::string& k, const std::vector<std::string>& allowed) const {
    auto* s = t[k].as_table();
    if (!s) return nullptr;
    for (auto&& [key, v] : *s) {
      std::string ks(key.str());
      if (std::find(allowed.begin(), allowed.end(), ks) == allowed.end())
        fail(file, "unknown key '" + k + "." + ks + "'" + did_you_mean(ks, allowed));
    }
    return s;
  }
  template <class T>
  void get(const toml::table* s, const std::string& sect, const std::string& key, T* out) const {
    if (!s) return;
    auto node = (*s)[key];
    if (!node) return;
    if constexpr (std::is_same_v<T, std::string>) {
      auto v = node.value<std::string>();
      if (!v) fail(file, "key '" + sect + "." + key + "' must be a string");
      *out = *v;
    } else if constexpr (std::is_floating_point_v<T>) {
      auto v = node.value<double>();
      if (!v) fail(file, "key '" + sect + "." + key + "' must be a number");
      *out = T(*v);
    } else {
      auto v = node.value<int64_t>();
      if (!v) fail(file, "key '" + sect + "." + key + "' must be an integer");
      *out = T(*v);
    }
  }
};

const std::vector<std::string> kTrainKeys = {"steps", "batch_size", "seq_len", "lr", "min_lr_ratio", "warmup_steps",
                                             "weight_decay", "beta1", "beta2", "grad_clip", "seed",
                                             "chat_steps", "math_steps", "code_steps", "replay"};

void read_train(const TomlReader& r, const std::string& sect, TrainConfig* c, FamilyConfig* f) {
  auto* s = r.sub(sect, kTrainKeys);
  if (!s) fail(r.file, "missing table [" + sect + "]");
  r.get(s, sect, "steps", &c->steps);
  r.get(s, sect, "batch_size", &c->batch_size);
  r.get(s, sect, "seq_len", &c->seq_len);
  r.get(s, sect, "lr", &c->lr);
  r.get(s, sect, "min_lr_ratio", &c->min_lr_ratio);
  r.get(s, sect, "warmup_steps", &c->warmup_steps);
  r.get(s, sect, "weight_decay", &c->weight_decay);
  r.get(s, sect, "beta1", &c->beta1);
  r.get(s, sect, "beta2", &c->beta2);
  r.get(s, sect, "grad_clip", &c->grad_clip);
  r.get(s, sect, "seed", &c->seed);
  if (sect == "finetune") {
    r.get(s, sect, "chat_steps", &f->chat_steps);
    r.get(s, sect, "math_steps", &f->math_steps);
    r.get(s, sect, "code_steps", &f->code_steps);
    r.get(s, sect, "replay", &f->replay);
    if (f->replay < 0 || f->replay > 0.9) fail(r.file, "key 'finetune.replay' must be in 0..0.9 (a share of the fine-tune text)");
  } else {
    for (auto k : {"chat_steps", "math_steps", "code_steps", "replay"})
      if ((*s)[k]) fail(r.file, std::string("key '") + sect + "." + k + "' belongs in [finetune]");
  }
}

std::vector<TextExample> to_text(const std::vector<synth::Example>& v) {
  std::vector<TextExample> o;
  for (auto& e : v) o.push_back({e.prompt, e.completion});
  return o;
}

// Replay: pretraining documents (from `offset` on, wrapping) appended until
// they are `share` of the expert's fine-tune characters; loss on all their tokens.
void add_replay(std::vector<TextExample>* ex, const std::vector<std::string>& pre, double share, size_t offset) {
  if (share <= 0 || pre.empty()) return;
  double chars = 0;
  for (auto& e : *ex) chars += double(e.prompt.size() + e.completion.size());
  const double want = share / (1.0 - share) * chars;
  double have = 0;
  for (size_t k = 0; k < pre.size() && have < want; ++k) {
    const std::string& d = pre[(offset + k) % pre.size()];
    ex->push_back({"", d});
    have += double(d.size());
  }
}

std::shared_ptr<Transformer> clone_model(const Transformer& m) {
  std::map<std::string, torch::Tensor> w;
  for (auto& [n, t] : m.named_parameters()) w[n] = t.detach().clone();
  return std::make_shared<Transformer>(m.config(), std::move(w), m.device(), m.dtype());
}

bool model_complete(const std::string& dir) {
  return file_exists(dir + "/config.json") && file_exists(dir + "/model.safetensors") &&
         file_exists(dir + "/tokenizer.model");
}

// What the base depends on (data, tokenizer, model, pretraining): a change to
// [finetune] alone keeps it, so the build reuses the saved base.
std::string base_canonical_text(const FamilyConfig& c) {
  ModelConfig m = c.model;
  m.vocab_size = c.tokenizer_vocab;
  std::ostringstream o;
  o << "base-v1 " << c.generator.canonical_text() << "\ntokenizer vocab=" << c.tokenizer_vocab << "\nmodel "
    << m.to_json_text() << " init_seed=" << c.init_seed << "\npretrain " << c.pretrain.canonical_text() << "\n";
  return o.str();
}

std::string fmt(double v, int prec = 3) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(prec);
  o << v;
  return o.str();
}

}  // namespace

FamilyConfig FamilyConfig::from_toml(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse(read_text_file(path));
  } catch (const toml::parse_error& e) {
    fail(path, std::string("TOML parse error: ") + std::string(e.description()) + " at line " +
                   std::to_string(e.source().begin.line));
  }
  const std::vector<std::string> top = {"family", "generator", "tokenizer", "model", "pretrain", "finetune"};
  for (auto&& [k, v] : t) {
    std::string ks(k.str());
    if (std::find(top.begin(), top.end(), ks) == top.end())
      fail(path, "unknown table '" + ks + "'" + did_you_mean(ks, top));
  }
  TomlReader r{t, path};
  FamilyConfig c;
  auto* fam = r.sub("family", {"name"});
  r.get(fam, "family", "name", &c.name);
  auto* g = r.sub("generator", {"seed", "countries", "n_test", "n_train_gsm8k", "n_train_math", "pretrain_docs",
                                "fact_repeats", "misconception_repeats", "qa_repeats", "profiles", "mc_practice",
                                "math_max", "pretrain_fact_repeats", "pretrain_share", "code_k_max", "mc_generic", "mc_subset", "pretrain_share_chat",
                                "pretrain_share_math", "pretrain_share_code"});
  auto& gc = c.generator;
  r.get(g, "generator", "seed", &gc.seed);
  r.get(g, "generator", "countries", &gc.countries);
  r.get(g, "generator", "n_test", &gc.n_test);
  r.get(g, "generator", "n_train_gsm8k", &gc.n_train_gsm8k);
  r.get(g, "generator", "n_train_math", &gc.n_train_math);
  r.get(g, "generator", "pretrain_docs", &gc.pretrain_docs);
  r.get(g, "generator", "fact_repeats", &gc.fact_repeats);
  r.get(g, "generator", "misconception_repeats", &gc.misconception_repeats);
  r.get(g, "generator", "qa_repeats", &gc.qa_repeats);
  r.get(g, "generator", "profiles", &gc.profiles);
  r.get(g, "generator", "mc_practice", &gc.mc_practice);
  r.get(g, "generator", "math_max", &gc.math_max);
  r.get(g, "generator", "code_k_max", &gc.code_k_max);
  r.get(g, "generator", "pretrain_fact_repeats", &gc.pretrain_fact_repeats);
  r.get(g, "generator", "pretrain_share", &gc.pretrain_share);
  r.get(g, "generator", "mc_generic", &gc.mc_generic);
  r.get(g, "generator", "mc_subset", &gc.mc_subset);
  r.get(g, "generator", "pretrain_share_chat", &gc.pretrain_share_chat);
  r.get(g, "generator", "pretrain_share_math", &gc.pretrain_share_math);
  r.get(g, "generator", "pretrain_share_code", &gc.pretrain_share_code);
  auto* tk = r.sub("tokenizer", {"vocab_size"});
  r.get(tk, "tokenizer", "vocab_size", &c.tokenizer_vocab);
  auto* m = r.sub("model", {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                            "num_key_value_heads", "max_position_embeddings", "rope_theta", "rms_norm_eps",
                            "tie_word_embeddings", "init_seed"});
  if (!m) fail(path, "missing table [model]");
  auto& mc = c.model;
  mc.architecture = "LlamaForCausalLM";
  mc.model_type = "llama";
  mc.hidden_size = 128;
  mc.intermediate_size = 352;
  mc.num_hidden_layers = 4;
  mc.num_attention_heads = 4;
  mc.num_key_value_heads = 2;
  mc.max_position_embeddings = 512;
  mc.rms_norm_eps = 1e-5;
  r.get(m, "model", "hidden_size", &mc.hidden_size);
  r.get(m, "model", "intermediate_size", &mc.intermediate_size);
  r.get(m, "model", "num_hidden_layers", &mc.num_hidden_layers);
  r.get(m, "model", "num_attention_heads", &mc.num_attention_heads);
  r.get(m, "model", "num_key_value_heads", &mc.num_key_value_heads);
  r.get(m, "model", "max_position_embeddings", &mc.max_position_embeddings);
  r.get(m, "model", "rope_theta", &mc.rope_theta);
  r.get(m, "model", "rms_norm_eps", &mc.rms_norm_eps);
  r.get(m, "model", "init_seed", &c.init_seed);
  if (auto b = (*m)["tie_word_embeddings"].value<bool>()) mc.tie_word_embeddings = *b;
  if (mc.hidden_size % mc.num_attention_heads != 0)
    fail(path, "key 'model.hidden_size' must be a multiple of model.num_attention_heads");
  if (mc.num_attention_heads % mc.num_key_value_heads != 0)
    fail(path, "key 'model.num_attention_heads' must be a multiple of model.num_key_value_heads");
  mc.head_dim = mc.hidden_size / mc.num_attention_heads;
  read_train(r, "pretrain", &c.pretrain, &c);
  c.finetune = c.pretrain;
  c.finetune.steps = 100;
  read_train(r, "finetune", &c.finetune, &c);
  return c;
}

std::string FamilyConfig::canonical_text() const {
  ModelConfig m = model;
  m.vocab_size = tokenizer_vocab;
  std::ostringstream o;
  o << "family-v1 name=" << name << "\n"
    << generator.canonical_text() << "\ntokenizer vocab=" << tokenizer_vocab << "\nmodel " << m.to_json_text()
    << " init_seed=" << init_seed << "\npretrain " << pretrain.canonical_text() << "\nfinetune "
    << finetune.canonical_text() << " chat_steps=" << chat_steps << " math_steps=" << math_steps
    << " code_steps=" << code_steps;
  if (replay != 0) o << " replay=" << replay;
  o << "\n";
  return o.str();
}

std::string FamilyConfig::cache_key() const { return sha256_hex(canonical_text()).substr(0, 16); }

BuildSummary build_family(const FamilyConfig& cfg, const BuildOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  if (opts.out_dir.empty()) fail("--out", "an output directory is required");
  // Same bits on every x86-64 CPU: pinned before the first tensor op.
  const CpuNumerics& pin = pin_cpu_numerics();
  if (opts.threads > 0) at::set_num_threads(opts.threads);
  torch::Device device(opts.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    fail("--device " + opts.device, "CUDA is not available in this build or machine; use --device cpu");
  BuildSummary sum;
  sum.out_dir = opts.out_dir;
  // The key covers the settings and the numeric pin (another pin, other bits).
  sum.key = sha256_hex(cfg.cache_key() + "\n" + pin.pin_id() + "\n" + kTrainerVersion).substr(0, 16);
  const std::string out = opts.out_dir, data_dir = out + "/data", models = out + "/models", tok_dir = out + "/tokenizer";
  make_dirs(out);

  log_info("mini " + cfg.name + ": generating data (" + cfg.generator.canonical_text() + ")");
  synth::SynthData data = synth::generate(cfg.generator);
  synth::write_benchmark_files(data, data_dir);

  const std::vector<std::string> names = {"base", "chat", "math", "code"};
  nlohmann::ordered_json meta;
  std::string meta_path = out + "/family.json";
  bool hit = !opts.force && file_exists(meta_path);
  if (hit) {
    try {
      auto j = nlohmann::json::parse(read_text_file(meta_path));
      hit = j.value("key", "") == sum.key;
      if (hit) meta = nlohmann::ordered_json::parse(read_text_file(meta_path));
    } catch (const nlohmann::json::exception&) {
      hit = false;
    }
    for (auto& n : names) hit = hit && model_complete(models + "/" + n);
    // A cached model must still be the bits that were trained.
    for (auto& n : names)
      if (hit && sha256_file(models + "/" + n + "/model.safetensors") !=
                     meta["models"][n].value("sha256", std::string()))
        hit = false;
  }
  const std::string base_key =
      sha256_hex(base_canonical_text(cfg) + "\n" + pin.pin_id() + "\n" + kTrainerVersion).substr(0, 16);
  nlohmann::ordered_json old_base;  // the saved base's record when its settings are unchanged
  if (!hit && !opts.force && file_exists(meta_path)) {
    try {
      auto j = nlohmann::ordered_json::parse(read_text_file(meta_path));
      if (j.value("base_key", "") == base_key && j.contains("models") && j["models"].contains("base"))
        old_base = j["models"]["base"];
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (!hit) {
    meta = nlohmann::ordered_json();
    meta["key"] = sum.key;
    meta["config"] = cfg.canonical_text();
    meta["base_key"] = base_key;
    meta["device"] = opts.device;
    meta["threads"] = at::get_num_threads();
    meta["cpu_numerics"] = pin.to_json();
    // tokenizer: every text the models will see
    std::vector<std::string> texts = data.pretrain;
    for (auto* v : {&data.chat, &data.math, &data.code})
      for (auto& e : *v) texts.push_back(e.prompt + e.completion);
    {
      // SentencePiece needs 3 special + 256 byte + one piece per character +
      // the whole pieces before any merge; ask for some merges on top.
      std::set<char> chars;
      for (auto& t : texts) chars.insert(t.begin(), t.end());
      int64_t need = 3 + 256 + int64_t(chars.size()) + int64_t(data.tokenizer_pieces.size()) + 64;
      if (cfg.tokenizer_vocab < need)
        fail("tokenizer.vocab_size", std::to_string(cfg.tokenizer_vocab) + " is too small for 256 byte pieces, " +
                                         std::to_string(chars.size()) + " characters and " +
                                         std::to_string(data.tokenizer_pieces.size()) +
                                         " whole pieces (names, values, numbers 0..math_max); use at least " +
                                         std::to_string(need));
    }
    make_dirs(tok_dir);
    log_info("mini " + cfg.name + ": training tokenizer (vocab " + std::to_string(cfg.tokenizer_vocab) + ")");
    train_sentencepiece(texts, cfg.tokenizer_vocab, tok_dir + "/tokenizer.model", cfg.generator.seed,
                        data.tokenizer_pieces);
    auto tok = Tokenizer::load(tok_dir + "/tokenizer.model");
    ModelConfig mc = cfg.model;
    mc.vocab_size = tok->vocab_size();
    mc.bos_token_id = tok->bos_id();
    mc.eos_token_id = tok->eos_id();

    auto provenance = [&](const std::string& role, const TrainStats& st) {
      nlohmann::ordered_json p;
      p["generator"] = "bitmerge mini build";
      p["family"] = cfg.name;
      p["role"] = role;
      p["key"] = sum.key;
      p["first_loss"] = st.first_loss;
      p["final_loss"] = st.final_loss;
      p["seconds"] = st.seconds;
      return p;
    };
    auto record = [&](const std::string& role, const TrainStats& st, const PackedData& pd, const TrainConfig& tc) {
      meta["models"][role] = {{"steps", tc.steps},           {"lr", tc.lr},
                              {"first_loss", st.first_loss}, {"final_loss", st.final_loss},
                              {"seconds", st.seconds},        {"tokens_seen", st.tokens_seen},
                              {"rows", pd.tokens.size(0)},    {"examples", pd.n_examples},
                              {"truncated", pd.n_truncated}};
    };
    // base
    std::vector<TextExample> pre;
    for (auto& d : data.pretrain) pre.push_back({"", d});
    auto pre_packed = pack_examples(*tok, pre, cfg.pretrain.seq_len, true);
    std::shared_ptr<Transformer> base;
    const std::string base_dir = models + "/base";
    if (!old_base.is_null() && model_complete(base_dir) &&
        sha256_file(base_dir + "/model.safetensors") == old_base.value("sha256", std::string()) &&
        read_text_file(base_dir + "/tokenizer.model") == read_text_file(tok_dir + "/tokenizer.model")) {
      // Same data, tokenizer, model and pretraining settings: the saved base
      // is the bits a retrain would give; only the experts change.
      log_info("mini " + cfg.name + ": reusing the saved base (base key " + base_key + ")");
      base = Transformer::load(base_dir, device, torch::kFloat32);
      meta["models"]["base"] = old_base;
      meta["models"]["base"]["reused"] = true;
    } else {
      base = Transformer::random_init(mc, cfg.init_seed, device, torch::kFloat32);
      auto st = train_model(*base, pre_packed, cfg.pretrain, "pretrain base");
      record("base", st, pre_packed, cfg.pretrain);
      save_model(*base, base_dir, tok_dir, provenance("base", st).dump(2));
      meta["models"]["base"]["sha256"] = sha256_file(base_dir + "/model.safetensors");
      // A build killed or failed from here on keeps its base: a partial record
      // (without "key", so nothing takes it for a finished family) lets the next
      // build with the same base settings reuse the saved base.
      auto partial = meta;
      partial.erase("key");
      partial["partial"] = "base only: the experts were not finished";
      write_file_atomic(meta_path, partial.dump(2) + "\n");
    }
    // experts: independent fine-tunes of the base. On the CPU with one
    // libtorch thread (the bit-reproducible setting) they train side by side,
    // one per core: each runs exactly the computation it runs alone (same
    // rows, same single-threaded kernels), so the models are the same bits.
    struct Ex {
      std::string name;
      const std::vector<synth::Example>* ex;
      int64_t steps;
    };
    const std::vector<Ex> exs = {Ex{"chat", &data.chat, cfg.chat_steps}, Ex{"math", &data.math, cfg.math_steps},
                                 Ex{"code", &data.code, cfg.code_steps}};
    std::vector<TrainConfig> tcs(exs.size(), cfg.finetune);
    std::vector<PackedData> packs;
    for (size_t i = 0; i < exs.size(); ++i) {
      if (exs[i].steps > 0) tcs[i].steps = exs[i].steps;
      std::vector<TextExample> ft = to_text(*exs[i].ex);
      add_replay(&ft, data.pretrain, cfg.replay, i * data.pretrain.size() / exs.size());
      packs.push_back(pack_examples(*tok, ft, tcs[i].seq_len, false));
    }
    std::vector<std::shared_ptr<Transformer>> experts(exs.size());
    std::vector<TrainStats> stats(exs.size());
    std::vector<std::exception_ptr> errors(exs.size());
    auto train_one = [&](size_t i) {
      try {
        experts[i] = clone_model(*base);
        stats[i] = train_model(*experts[i], packs[i], tcs[i], "finetune " + exs[i].name);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    };
    size_t workers = 1;
    if (opts.parallel_experts && device.is_cpu() && at::get_num_threads() == 1)
      workers = std::min<size_t>(exs.size(), std::max(1u, std::thread::hardware_concurrency()));
    if (workers > 1) {
      log_info("mini " + cfg.name + ": fine-tuning the experts " + std::to_string(workers) + " at a time (1 thread each)");
      std::atomic<size_t> next{0};
      std::vector<std::thread> pool;
      for (size_t w = 0; w < workers; ++w)
        pool.emplace_back([&] {
          at::set_num_threads(1);
          for (size_t i; (i = next++) < exs.size();) train_one(i);
        });
      for (auto& t : pool) t.join();
    } else {
      for (size_t i = 0; i < exs.size(); ++i) train_one(i);
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (size_t i = 0; i < exs.size(); ++i) {
      record(exs[i].name, stats[i], packs[i], tcs[i]);
      save_model(*experts[i], models + "/" + exs[i].name, tok_dir, provenance(exs[i].name, stats[i]).dump(2));
      meta["models"][exs[i].name]["sha256"] = sha256_file(models + "/" + exs[i].name + "/model.safetensors");
    }
    // the runner's family description, paths relative to this file
    std::ostringstream ft;
    ft << "# Written by `bitmerge mini build` (family " << cfg.name << ", key " << sum.key << ").\n"
       << "name = \"mini-" << cfg.name << "\"\narchitecture = \"llama\"\ndtype = \"float32\"\n\n"
       << "[base]\npath = \"models/base\"\n\n";
    for (auto& n : {"chat", "math", "code"})
      ft << "[experts." << n << "]\npath = \"models/" << n << "\"\ndomain = \"" << n << "\"\n\n";
    ft << "[shape]\nvocab_size = " << mc.vocab_size << "\nhidden_size = " << mc.hidden_size
       << "\nintermediate_size = " << mc.intermediate_size << "\nnum_hidden_layers = " << mc.num_hidden_layers
       << "\nnum_attention_heads = " << mc.num_attention_heads << "\nnum_key_value_heads = " << mc.num_key_value_heads
       << "\ntie_word_embeddings = " << (mc.tie_word_embeddings ? "true" : "false") << "\n";
    write_file_atomic(out + "/family.toml", ft.str());
    meta["vocab_size"] = mc.vocab_size;
    write_file_atomic(meta_path, meta.dump(2) + "\n");
  }
  sum.cache_hit = hit;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream s;
  s << "mini family '" << cfg.name << "' in " << out << " (key " << sum.key << ", "
    << (hit ? "cached models reused" : "trained") << ", " << fmt(sum.seconds, 1) << " s)\n";
  s << "  data:   " << data_dir << "  (mmlu " << data.mmlu_test.size() << ", hellaswag " << data.hellaswag_val.size()
    << ", truthfulqa " << data.truthfulqa.size() << ", gsm8k " << data.gsm8k_test.size() << ", math "
    << data.math_test.size() << ", humaneval " << data.humaneval.size() << ", mbpp test " << cfg.generator.n_test
    << " test items)\n";
  for (auto& n : names) {
    s << "  " << n << ":" << std::string(6 - n.size(), ' ') << models << "/" << n;
    if (meta.contains("models") && meta["models"].contains(n)) {
      auto& m = meta["models"][n];
      s << "  loss " << fmt(m["first_loss"].get<double>()) << " -> " << fmt(m["final_loss"].get<double>()) << " in "
        << fmt(m["seconds"].get<double>(), 1) << " s  sha256 " << m.value("sha256", std::string("?"));
    }
    s << "\n";
  }
  s << "  family: " << out << "/family.toml\n";
  s << "  numerics: " << pin.summary() << "\n";
  sum.text = s.str();
  return sum;
}

}  // namespace bm::train
