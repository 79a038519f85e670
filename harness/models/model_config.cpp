#include "harness/models/model_config.hpp"

#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/models/shapes.hpp"

namespace bm {
using json = nlohmann::json;

// The supported architectures: config.json's model_type and architectures[0].
// The rest of an architecture is its tensor table (arch.cpp), shapes
// (shapes.cpp) and forward (transformer.cpp).
namespace {
struct ArchitectureName {
  const char* model_type;
  const char* hf_class;
};
const ArchitectureName kArchitectures[] = {{"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}};
const ArchitectureName* find_architecture(const std::string& model_type) {
  for (const auto& a : kArchitectures)
    if (model_type == a.model_type) return &a;
  return nullptr;
}
}  // namespace

std::vector<std::string> model_types() {
  std::vector<std::string> out;
  for (const auto& a : kArchitectures) out.push_back(a.model_type);
  return out;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  if (!file_exists(path))
    fail(path, "missing; a model directory needs the config.json of its Hugging Face checkpoint");
  return from_json_text(read_text_file(path), path);
}

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail(where, std::string("not valid JSON: ") + e.what());
  }
  ModelConfig c;
  auto need_int = [&](const char* key) -> int64_t {
    if (!j.contains(key) || j[key].is_null())
      fail(where, std::string("missing required key '") + key + "'; add it from the model's original config.json");
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
      fail(where, std::string("key '") + key + "' must be a positive integer, got " + j[key].dump());
    return j[key].get<int64_t>();
  };
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    c.architecture = j["architectures"][0].get<std::string>();
  c.model_type = j.value("model_type", std::string());
  const auto* by_type = find_architecture(c.model_type.empty() ? "llama" : c.model_type);
  if (c.architecture.empty()) c.architecture = by_type ? by_type->hf_class : "LlamaForCausalLM";
  const ArchitectureName* arch = nullptr;
  std::string all;
  for (const auto& a : kArchitectures) {
    if (c.architecture == a.hf_class) arch = &a;
    all += std::string(all.empty() ? "" : ", ") + a.hf_class;
  }
  if (!arch) fail(where, "architecture '" + c.architecture + "' is not supported (" + all + ")");
  if (c.model_type.empty()) c.model_type = arch->model_type;
  c.vocab_size = need_int("vocab_size");
  c.hidden_size = need_int("hidden_size");
  c.intermediate_size = need_int("intermediate_size");
  c.num_hidden_layers = need_int("num_hidden_layers");
  c.num_attention_heads = need_int("num_attention_heads");
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                              ? need_int("num_key_value_heads")
                              : c.num_attention_heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null() ? need_int("head_dim")
                                                                  : c.hidden_size / c.num_attention_heads;
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(where, "num_attention_heads (" + std::to_string(c.num_attention_heads) +
                    ") is not a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  if (j.contains("max_position_embeddings")) c.max_position_embeddings = need_int("max_position_embeddings");
  if (j.contains("rope_theta") && j["rope_theta"].is_number()) c.rope_theta = j["rope_theta"].get<double>();
  // transformers 5 may nest rope_theta under rope_parameters.
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object() &&
      j["rope_parameters"].contains("rope_theta"))
    c.rope_theta = j["rope_parameters"]["rope_theta"].get<double>();
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail(where, "rope_scaling is not supported; remove it only if the model was trained without it");
  if (j.contains("rms_norm_eps") && j["rms_norm_eps"].is_number()) c.rms_norm_eps = j["rms_norm_eps"].get<double>();
  if (j.contains("sliding_window") && j["sliding_window"].is_number_integer())
    c.sliding_window = j["sliding_window"].get<int64_t>();
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"];
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eos_token_id = j["eos_token_id"];
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"];
  if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"];
  return c;
}

std::string ModelConfig::to_json_text() const {
  json j;
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["initializer_range"] = 0.02;
  j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  return j.dump(2);
}

int64_t ModelConfig::parameter_count() const { return param_counts(*this).total(); }

}  // namespace bm
