// BitDelta's fit settings (harness/train/bitdelta.hpp), torch-free so that the
// runner's config parser and cell keys (bm_runner_core) and `bitmerge compress`
// share one home for them and their defaults. Header only.
#pragma once
#include <cstdint>
#include <string>

namespace bm::train {

// The optimizer of the scales.
struct BitDeltaConfig {
  int64_t steps = 200;      // BitDelta: 200 steps
  int64_t batch_size = 4;   // rows per step
  double lr = 1e-4;         // BitDelta: Adam, 1e-4
  std::string canonical_text() const;  // bitdelta.cpp (for logs)
};

// The calibration set the scales are fitted on (calibration_rows): rows of seq_len tokens.
struct BitDeltaCalibration {
  int64_t rows = 64;
  int64_t seq_len = 128;
};

}  // namespace bm::train
