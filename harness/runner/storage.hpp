// Analytic storage of a model variant (bytes), from the model's shapes.
// Rule (documented in results/README.md): fp16 = 2 bytes per parameter; a
// 1-bit matrix = ceil(m*n/8) bytes + 2 bytes of fp16 scale (ternary, position:ternary=k:
// ceil(m*n/4) bytes + 2); only Linear
// (attention / MLP projection) matrices are ever compressed.
//   base, merged model (TA/TIES/DARE)   : one fp16 model
//   fine-tuned expert                   : one fp16 model
//   compressed expert                   : fp16 base + its task vector (1-bit at the position)
//   Routing                             : the fine-tuned experts, fp16 each
//   1bit-Merging                        : fp16 base + each compressed task vector
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include "harness/models/shapes.hpp"
#include "harness/runner/config.hpp"

namespace bm::runner {

using bm::ParamCounts;  // harness/models/shapes.hpp: the architecture table's counts

ParamCounts param_counts(const ModelShape& s);
// From the base's config.json when present, else the family's [shape].
ParamCounts family_param_counts(const Family& f);
int64_t task_vector_bytes(const ParamCounts& c, const std::string& position);
int64_t variant_storage_bytes(const Experiment& e, const Variant& v, const ParamCounts& c);

}  // namespace bm::runner
