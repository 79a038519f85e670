#include "harness/runner/storage.hpp"

#include "harness/core/fileio.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/model_config.hpp"

namespace bm::runner {

ParamCounts param_counts(const ModelShape& s) {
  ModelConfig m;
  m.vocab_size = s.vocab_size;
  m.hidden_size = s.hidden_size;
  m.intermediate_size = s.intermediate_size;
  m.num_hidden_layers = s.num_hidden_layers;
  m.num_attention_heads = s.num_attention_heads;
  m.num_key_value_heads = s.num_key_value_heads;
  m.tie_word_embeddings = s.tie_word_embeddings;  // head_dim 0 = hidden / heads
  return bm::param_counts(m);
}

ParamCounts family_param_counts(const Family& f) {
  std::string cfg = resolve_model_dir(f, f.base, repo_root()) + "/config.json";
  if (bm::file_exists(cfg)) return bm::param_counts(ModelConfig::from_file(cfg));  // head_dim as configured
  return param_counts(f.shape);
}

int64_t task_vector_bytes(const ParamCounts& c, const std::string& pos) {
  // position[:scheme]: the scheme's bytes (bm::compressed_matrix_bytes) of all the
  // covered matrices' entries as one run, plus one fp16 scale per matrix.
  const bm::Compression comp = bm::parse_compression(pos, "compression '" + pos + "'");
  auto packed = [&](int64_t numel, int64_t mats) {
    return static_cast<int64_t>(bm::compressed_matrix_bytes(comp, numel)) + 2 * (mats - 1);
  };
  bool ca = comp.position == bm::Position::Attention || comp.position == bm::Position::Linear;
  bool cm = comp.position == bm::Position::Mlp || comp.position == bm::Position::Linear;
  int64_t b = 2 * (c.embed + c.head + c.norm);
  b += ca ? packed(c.attn, c.attn_mats) : 2 * c.attn;
  b += cm ? packed(c.mlp, c.mlp_mats) : 2 * c.mlp;
  return b;
}

int64_t variant_storage_bytes(const Experiment& e, const Variant& v, const ParamCounts& c) {
  int64_t model = 2 * c.total();
  if (v.kind == "base" || v.kind == "merge" || v.kind == "expert") return model;
  if (v.kind == "compressed") return model + task_vector_bytes(c, v.position);
  if (v.kind == "routing") return model * static_cast<int64_t>(v.experts.size());
  if (v.kind == "onebit_merging") {
    int64_t b = model;
    for (auto& x : v.experts) {
      auto it = v.compress.find(x);
      b += task_vector_bytes(c, it == v.compress.end() ? "none" : it->second);
    }
    return b;
  }
  (void)e;
  return 0;
}

}  // namespace bm::runner
