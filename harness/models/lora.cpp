// PEFT LoRA adapters folded into their base, lazily, one tensor per get().
// Adapter keys look like
//   base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight   [r, in]
//   base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight   [out, r]
// (older PEFT: "...lora_A.default.weight"; embeddings: lora_embedding_A/B);
// any other key naming a base tensor (modules_to_save, e.g. a resized
// lm_head) replaces that tensor.
#include "harness/models/lora.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/fingerprint.hpp"

namespace bm {
namespace {
using json = nlohmann::json;

const std::string kPrefix = "base_model.model.";

struct Fold {
  std::string a, b;  // adapter tensor names
  double scale = 1;
  bool embedding = false;  // lora_embedding_A [r, V], B [H, r]: delta = (B A)^T
  bool transpose = false;  // fan_in_fan_out
};

// PEFT's pattern match for rank_pattern / alpha_pattern keys.
bool pattern_matches(const std::string& pattern, const std::string& module) {
  try {
    return std::regex_match(module, std::regex("(.*\\.)?" + pattern));
  } catch (const std::regex_error&) {
    return module == pattern;
  }
}

class LoraCheckpoint : public Checkpoint {
 public:
  LoraCheckpoint(const std::string& adapter_dir, std::shared_ptr<Checkpoint> base) : base_(std::move(base)) {
    dir_ = adapter_dir;
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    has_config_ = base_->has_config();
    if (has_config_) config_ = base_->config();
    const std::string cfg_path = dir_ + "/adapter_config.json";
    if (!file_exists(cfg_path)) fail(cfg_path, "missing; a PEFT LoRA adapter directory needs its adapter_config.json");
    json cfg;
    try {
      cfg = json::parse(read_text_file(cfg_path));
    } catch (const json::exception& e) {
      fail(cfg_path, std::string("not valid JSON (") + e.what() + "); re-download the adapter");
    }
    std::string type = cfg.value("peft_type", std::string("LORA"));
    if (type != "LORA") fail(cfg_path, "peft_type '" + type + "' is not supported (only LORA adapters can be folded)");
    if (cfg.value("use_dora", false)) fail(cfg_path, "DoRA adapters (use_dora: true) are not supported; merge it with PEFT first");
    auto num = [&](const char* key) -> double {
      if (!cfg.contains(key) || !cfg[key].is_number()) fail(cfg_path, std::string("missing numeric key '") + key + "'; re-download the adapter");
      return cfg[key].get<double>();
    };
    const double r = num("r"), alpha = num("lora_alpha");
    if (r <= 0) fail(cfg_path, "'r' must be positive");
    const bool rslora = cfg.value("use_rslora", false);
    const bool fan_in_fan_out = cfg.value("fan_in_fan_out", false);
    std::map<std::string, double> rank_pattern, alpha_pattern;
    for (auto [key, m] : {std::pair<const char*, std::map<std::string, double>*>{"rank_pattern", &rank_pattern},
                          {"alpha_pattern", &alpha_pattern}})
      if (cfg.contains(key) && cfg[key].is_object())
        for (auto& [p, v] : cfg[key].items())
          if (v.is_number()) (*m)[p] = v.get<double>();

    std::string wfile = dir_ + "/adapter_model.safetensors";
    if (!file_exists(wfile)) wfile = dir_ + "/adapter_model.bin";
    if (!file_exists(wfile))
      fail(dir_, "has adapter_config.json but neither adapter_model.safetensors nor adapter_model.bin; download the adapter weights");
    adapter_ = Checkpoint::open(wfile);
    adapter_file_ = wfile;

    for (auto& n : base_->names()) add_name(n);
    static const std::regex lora_key(R"(^(.*)\.lora_(embedding_)?([AB])(\.[A-Za-z0-9_-]+)?(\.weight)?$)");
    std::map<std::string, Fold> folds;  // by module path
    for (auto& key : adapter_->names()) {
      std::string k = key.rfind(kPrefix, 0) == 0 ? key.substr(kPrefix.size()) : key;
      std::smatch m;
      if (std::regex_match(k, m, lora_key)) {
        Fold& f = folds[m[1].str()];
        f.embedding = m[2].matched;
        (m[3].str() == "A" ? f.a : f.b) = key;
        continue;
      }
      // modules_to_save: a whole tensor that replaces the base's.
      if (!has(k))
        fail(wfile, "tensor '" + key + "' is neither a LoRA factor nor a tensor of the base model " + base_->dir() +
                        "; is the base the adapter's base_model_name_or_path?");
      replace_[k] = key;
    }
    for (auto& [module, f] : folds) {
      const std::string target = module + ".weight";
      if (f.a.empty() || f.b.empty())
        fail(wfile, "module '" + module + "' has lora_" + (f.a.empty() ? "B" : "A") + " but no lora_" +
                        (f.a.empty() ? "A" : "B") + "; re-download the adapter");
      if (!base_->has(target))
        fail(wfile, "LoRA targets '" + target + "', which the base model " + base_->dir() + " does not have" +
                        did_you_mean(target, base_->names()) + "; open the adapter with its own base model");
      double rr = r, aa = alpha;
      for (auto& [p, v] : rank_pattern) if (pattern_matches(p, module)) rr = v;
      for (auto& [p, v] : alpha_pattern) if (pattern_matches(p, module)) aa = v;
      f.scale = rslora ? aa / std::sqrt(rr) : aa / rr;
      f.transpose = fan_in_fan_out;
      // Shapes: A [r, in], B [out, r] must compose to the base weight's shape.
      TensorInfo A = adapter_->info(f.a), B = adapter_->info(f.b), W = base_->info(target);
      std::vector<int64_t> delta;
      bool ok = A.shape.size() == 2 && B.shape.size() == 2 && W.shape.size() == 2 && A.shape[0] == B.shape[1];
      if (ok) {
        delta = {B.shape[0], A.shape[1]};
        if (f.embedding != f.transpose) std::swap(delta[0], delta[1]);
        ok = delta == W.shape;
      }
      if (!ok)
        fail(wfile, "LoRA factors of '" + module + "' (A " + shape_str(A.shape) + ", B " + shape_str(B.shape) +
                        ") do not fit base tensor '" + target + "' " + shape_str(W.shape) +
                        "; the adapter was trained on a different base model");
      folds_[target] = f;
    }
  }

  TensorInfo info(const std::string& name) const override {
    auto r = replace_.find(name);
    if (r != replace_.end()) {
      TensorInfo t = adapter_->info(r->second);
      t.name = name;
      return t;
    }
    return base_->info(name);
  }

  torch::Tensor get(const std::string& name) const override {
    auto r = replace_.find(name);
    if (r != replace_.end()) return adapter_->get(r->second);
    auto it = folds_.find(name);
    torch::Tensor w = base_->get(name);
    if (it == folds_.end()) return w;
    const Fold& f = it->second;
    torch::Tensor delta = torch::matmul(adapter_->get(f.b).to(torch::kFloat32), adapter_->get(f.a).to(torch::kFloat32));
    if (f.embedding != f.transpose) delta = delta.t();
    return (w.to(torch::kFloat32) + delta * f.scale).to(w.scalar_type());
  }

  std::vector<std::string> files() const override {
    auto f = base_->files();
    f.push_back(adapter_file_);
    return f;
  }

  // The folded weights are the adapter's and the base's: both fingerprints, combined.
  std::string fingerprint() const override {
    if (fingerprint_.empty()) fingerprint_ = sha256_hex("lora:" + model_fingerprint(dir_) + "+" + base_->fingerprint());
    return fingerprint_;
  }

  size_t folded_count() const { return folds_.size(); }

 private:
  std::shared_ptr<Checkpoint> base_, adapter_;
  std::string adapter_file_;
  std::map<std::string, Fold> folds_;            // base tensor -> factors
  std::map<std::string, std::string> replace_;   // base tensor -> adapter tensor
};

}  // namespace

std::string lora_base_model_path(const std::string& adapter_dir) {
  const std::string p = adapter_dir + "/adapter_config.json";
  if (!file_exists(p)) return "";
  try {
    json j = json::parse(read_text_file(p));
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      return j["base_model_name_or_path"].get<std::string>();
  } catch (const json::exception&) {
  }
  return "";
}

std::shared_ptr<Checkpoint> open_lora_checkpoint(const std::string& adapter_dir, std::shared_ptr<Checkpoint> base) {
  return std::make_shared<LoraCheckpoint>(adapter_dir, std::move(base));
}

}  // namespace bm
