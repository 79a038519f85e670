#include "harness/runner/storage.hpp"

#include "harness/core/fileio.hpp"
#include "harness/models/arch.hpp"
#include "merging/storage.hpp"

namespace bm::runner {

ModelConfig shape_config(const ModelShape& s) {
  ModelConfig m;
  m.vocab_size = s.vocab_size;
  m.hidden_size = s.hidden_size;
  m.intermediate_size = s.intermediate_size;
  m.num_hidden_layers = s.num_hidden_layers;
  m.num_attention_heads = s.num_attention_heads;
  m.num_key_value_heads = s.num_key_value_heads;
  m.tie_word_embeddings = s.tie_word_embeddings;  // head_dim 0 = hidden / heads
  return m;
}

ParamCounts param_counts(const ModelShape& s) { return bm::param_counts(shape_config(s)); }

ModelConfig family_model_config(const Family& f) {
  std::string cfg = resolve_model_dir(f, f.base, repo_root()) + "/config.json";
  if (bm::file_exists(cfg)) return ModelConfig::from_file(cfg);  // head_dim as configured
  return shape_config(f.shape);
}

ParamCounts family_param_counts(const Family& f) { return bm::param_counts(family_model_config(f)); }

int64_t task_vector_bytes(const ModelConfig& m, const std::string& pos) {
  // position[:scheme]: every tensor of the model, each covered matrix by its scheme (merging/storage.hpp).
  const bm::Compression comp = bm::parse_compression(pos, "compression '" + pos + "'");
  return static_cast<int64_t>(bm::merging::task_vector_bytes(bm::model_tensors(m), comp, 2));
}

int64_t variant_storage_bytes(const Experiment& e, const Variant& v, const ModelConfig& m) {
  const int64_t model = task_vector_bytes(m, "none");  // fp16 throughout
  if (v.kind == "base" || v.kind == "merge" || v.kind == "expert") return model;
  if (v.kind == "compressed") return model + task_vector_bytes(m, v.position);
  if (v.kind == "routing") return model * static_cast<int64_t>(v.experts.size());
  if (v.kind == "onebit_merging") {
    int64_t b = model;
    for (auto& x : v.experts) {
      auto it = v.compress.find(x);
      b += task_vector_bytes(m, it == v.compress.end() ? "none" : it->second);
    }
    return b;
  }
  (void)e;
  return 0;
}

}  // namespace bm::runner
