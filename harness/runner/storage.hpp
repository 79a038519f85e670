// Analytic storage of a model variant (bytes), from the model's shapes.
// Rule (documented in results/README.md): fp16 = 2 bytes per parameter; a
// compressed task vector counts each matrix at its position by the scheme
// (merging/storage.hpp tensor_bytes, the same count as `bitmerge storage`:
// sign / bitdelta ceil(m*n/8) + 2 bytes of fp16 scale, ternary ceil(m*n/4) + 2);
// only Linear (attention / MLP projection) matrices are ever compressed.
//   base, merged model (TA/TIES/DARE)   : one fp16 model
//   fine-tuned expert                   : one fp16 model
//   compressed expert                   : fp16 base + its task vector (1-bit at the position)
//   Routing                             : the fine-tuned experts, fp16 each
//   1bit-Merging                        : fp16 base + each compressed task vector
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include "harness/models/model_config.hpp"
#include "harness/models/shapes.hpp"
#include "harness/runner/config.hpp"

namespace bm::runner {

using bm::ParamCounts;  // harness/models/shapes.hpp: the architecture table's counts

// A family's [shape] as a config (head_dim = hidden / heads).
ModelConfig shape_config(const ModelShape& s);
ParamCounts param_counts(const ModelShape& s);
// The base's config.json when present (head_dim as configured), else the family's [shape].
ModelConfig family_model_config(const Family& f);
ParamCounts family_param_counts(const Family& f);
// Bytes of the task vector at `position` (position[:scheme], "none" = fp16 throughout).
int64_t task_vector_bytes(const ModelConfig& m, const std::string& position);
int64_t variant_storage_bytes(const Experiment& e, const Variant& v, const ModelConfig& m);

}  // namespace bm::runner
