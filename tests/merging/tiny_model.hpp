// Tiny LLaMA-shaped checkpoints written straight to disk for the merging tests.
#pragma once
#include <torch/torch.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "harness/models/model_config.hpp"

namespace bm::test {

inline ModelConfig tiny_config(int64_t vocab = 32, int64_t hidden = 8, int64_t inter = 16, int64_t layers = 2) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.head_dim = hidden / 2;
  c.max_position_embeddings = 64;
  c.torch_dtype = "float32";
  return c;
}

inline std::vector<int64_t> tiny_shape(const ModelConfig& c, const std::string& n) {
  std::vector<int64_t> s;
  if (!Checkpoint::expected_shape(c, n, &s)) throw std::runtime_error("no shape for " + n);
  return s;
}

using MakeTensor = std::function<torch::Tensor(const std::string& name, const std::vector<int64_t>& shape)>;

// config.json + model.safetensors; tensors in llama_tensor_names order.
inline void write_tiny_model(const std::string& dir, const ModelConfig& c, const MakeTensor& make,
                             DType dtype = DType::F32) {
  make_dirs(dir);
  write_file_atomic(dir + "/config.json", c.to_json_text());
  auto names = llama_tensor_names(static_cast<int>(c.num_hidden_layers), c.tie_word_embeddings);
  std::vector<torch::Tensor> ts;
  SafetensorsWriter w(dir + "/model.safetensors", {{"format", "pt"}});
  for (auto& n : names) {
    auto t = make(n, tiny_shape(c, n)).to(to_torch_dtype(dtype)).contiguous();
    w.declare(n, dtype, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()));
    ts.push_back(t);
  }
  for (size_t i = 0; i < names.size(); ++i) w.write(names[i], ts[i].data_ptr(), ts[i].numel() * ts[i].element_size());
  w.finish();
}

// Base: N(0,1) from seed; expert: base + 0.1 * N(0,1) from another seed.
inline MakeTensor random_tensors(uint64_t seed, double scale = 1.0, const MakeTensor& on_top = nullptr) {
  return [=](const std::string& n, const std::vector<int64_t>& s) {
    torch::manual_seed(seed + std::hash<std::string>{}(n) % 100000);
    auto t = torch::randn(s) * scale;
    if (on_top) t = t + on_top(n, s);
    return t;
  };
}

inline std::string temp_dir(const std::string& tag) {
  std::string d = "/tmp/bm-merging-test-" + tag + "-" + std::to_string(getpid());
  make_dirs(d);
  return d;
}

}  // namespace bm::test
