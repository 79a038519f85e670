#include "merging/storage.hpp"

#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/core/error.hpp"

namespace bm::merging {

std::vector<std::string> family_presets() { return {"llama2-7b", "llama2-13b", "mistral-7b"}; }

ModelConfig family_preset(const std::string& name) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = 32000;
  c.torch_dtype = "float16";
  if (name == "llama2-7b") {
    c.hidden_size = 4096, c.intermediate_size = 11008, c.num_hidden_layers = 32;
    c.num_attention_heads = 32, c.num_key_value_heads = 32;
  } else if (name == "llama2-13b") {
    c.hidden_size = 5120, c.intermediate_size = 13824, c.num_hidden_layers = 40;
    c.num_attention_heads = 40, c.num_key_value_heads = 40;
  } else if (name == "mistral-7b") {
    c.architecture = "MistralForCausalLM", c.model_type = "mistral";
    c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32;
    c.num_attention_heads = 32, c.num_key_value_heads = 8;
    c.sliding_window = 4096, c.rope_theta = 10000.0;
  } else {
    fail("--family " + name, "unknown model family" + did_you_mean(name, family_presets()) +
                                 "; use llama2-7b, llama2-13b, mistral-7b or --family-config config.json");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return c;
}

std::vector<TensorShape> tensors_from_config(const ModelConfig& c) { return model_tensors(c); }

uint64_t tensor_bytes(const TensorShape& t, const Compression& c, int value_bytes) {
  uint64_t n = 1;
  for (auto d : t.shape) n *= static_cast<uint64_t>(d);
  if (t.shape.size() == 2 && position_covers(c.position, classify_tensor(t.name).role))
    return compressed_matrix_bytes(c, static_cast<int64_t>(n));
  return n * static_cast<uint64_t>(value_bytes);
}

uint64_t task_vector_bytes(const std::vector<TensorShape>& ts, const Compression& p, int vb) {
  uint64_t s = 0;
  for (auto& t : ts) s += tensor_bytes(t, p, vb);
  return s;
}

StorageReport storage_report(const std::string& model, const std::vector<TensorShape>& tensors,
                             const StorageOptions& opts) {
  StorageReport r;
  r.model = model;
  const int vb = opts.value_bytes;
  const uint64_t full = task_vector_bytes(tensors, Position::None, vb);
  const size_t K = opts.experts.size();
  r.components.push_back({"model (base or one full expert)", full, "analytic"});
  for (Position p : {Position::Attention, Position::Mlp, Position::Linear})
    r.components.push_back({std::string("1-bit task vector @ ") + position_name(p), task_vector_bytes(tensors, p, vb), "analytic"});
  const uint64_t routing = full * K;
  auto row = [&](const std::string& v, const std::string& c, uint64_t b) {
    r.rows.push_back({v, c, b, routing ? static_cast<double>(b) / static_cast<double>(routing) : 0.0});
  };
  row("Routing", std::to_string(K) + " full experts", routing);
  row("base + fp16 task vectors", "base + " + std::to_string(K) + " task vectors", full * (K + 1));
  auto assignments = opts.assignments;
  if (assignments.empty()) {
    auto mk = [&](Position chat, Position others) {
      std::map<std::string, Compression> m;
      for (auto& e : opts.experts) m[e] = (e == "chat") ? chat : others;
      return m;
    };
    assignments = {mk(Position::Mlp, Position::Attention), mk(Position::Linear, Position::Attention),
                   mk(Position::Attention, Position::Attention), mk(Position::Mlp, Position::Mlp),
                   mk(Position::Linear, Position::Linear)};
  }
  for (auto& a : assignments) {
    std::string label;
    uint64_t vec = 0;
    for (auto& e : opts.experts) {
      Compression p = a.count(e) ? a.at(e) : Compression();
      label += (label.empty() ? "" : ", ") + e + "=" + compression_name(p);
      vec += task_vector_bytes(tensors, p, vb);
    }
    row("1bit-Merging (" + label + ")", "base + compressed task vectors", full + vec);
    row("  same, base not counted", "compressed task vectors only", vec);
  }
  row("static merge (TA / TIES / DARE)", "one model", full);
  return r;
}

void add_measured(StorageReport& r, const std::string& name, uint64_t bytes, const std::string& path) {
  r.components.push_back({name, bytes, path});
}

static std::string gb(uint64_t b) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(3);
  o << static_cast<double>(b) / 1e9;
  return o.str();
}

std::string StorageReport::to_markdown() const {
  std::ostringstream o;
  o << "## Storage: " << model << "\n\n| component | bytes | GB | source |\n|---|---:|---:|---|\n";
  for (auto& c : components) o << "| " << c.name << " | " << c.bytes << " | " << gb(c.bytes) << " | " << c.source << " |\n";
  o << "\n| variant | stored | bytes | GB | % of Routing |\n|---|---|---:|---:|---:|\n";
  for (auto& row : rows) {
    std::ostringstream pct;
    pct.setf(std::ios::fixed);
    pct.precision(2);
    pct << 100.0 * row.ratio;
    o << "| " << row.variant << " | " << row.components << " | " << row.bytes << " | " << gb(row.bytes) << " | "
      << pct.str() << " |\n";
  }
  return o.str();
}

std::string StorageReport::to_json() const {
  nlohmann::json j;
  j["model"] = model;
  for (auto& c : components) j["components"].push_back({{"name", c.name}, {"bytes", c.bytes}, {"source", c.source}});
  for (auto& r : rows)
    j["rows"].push_back({{"variant", r.variant}, {"components", r.components}, {"bytes", r.bytes}, {"ratio", r.ratio}});
  return j.dump(2);
}

}  // namespace bm::merging
