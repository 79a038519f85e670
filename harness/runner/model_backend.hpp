// The "model" backend: builds each variant with the merging library, runs the
// tasks' eval driver on the libtorch engine; Routing and 1bit-Merging route
// every item with the trained (or oracle) router, evaluate each routed group
// on its model and combine the per-item samples into one metric per cell.
#pragma once
#include <string>

#include "harness/runner/config.hpp"

namespace bm::runner {

// Registers backend "model" and the checkpoint fetcher (call once, before run).
void register_model_backend();

// Downloads every missing checkpoint of the grid that has an hf_id (bm::fetch_hf_model).
void fetch_missing_checkpoints(const Experiment& e);

}  // namespace bm::runner
