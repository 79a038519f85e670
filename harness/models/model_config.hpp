// config.json of LlamaForCausalLM / MistralForCausalLM (torch-free).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm {

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM" | "MistralForCausalLM"
  std::string model_type;    // "llama" | "mistral"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless given
  int64_t max_position_embeddings = 4096;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int64_t sliding_window = 0;  // 0 = none
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";  // as declared in config.json

  // Parses and validates; errors name the file and the key.
  static ModelConfig from_file(const std::string& config_json_path);
  static ModelConfig from_json_text(const std::string& text, const std::string& where);
  std::string to_json_text() const;  // HF-compatible config.json
  int64_t parameter_count() const;   // analytic, from the sizes
};

// Supported architectures by config.json model_type ("llama", "mistral"): family files' `architecture`.
std::vector<std::string> model_types();

}  // namespace bm
