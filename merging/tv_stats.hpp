// Task-vector statistics: how large each expert's task vector
// delta_k = theta_k - theta_pre is next to the base, how the experts' task
// vectors relate (cosine, sign agreement) and how many entries are exact
// zeros, per position of the architecture table (attention, MLP,
// embeddings/head, norms), per role, per layer and for the whole model.
// Streams tensor by tensor and row-chunk by chunk over memory-mapped
// checkpoints, so a 7B family needs about one chunk per model in RAM; all
// sums are float64 and taken in one fixed order (results do not depend on
// the thread count).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "harness/models/checkpoint.hpp"

namespace bm::merging {

// Additive sums over a set of entries (a tensor, a position, the model):
// statistics of several sets are the statistics of their union after add().
struct TvAccum {
  int64_t n = 0;       // entries
  double base_sq = 0;  // sum of theta_pre^2
  // Per expert k.
  std::vector<double> sq, abs_sum, max_abs;  // sum d^2, sum |d|, max |d|
  std::vector<int64_t> zeros;                // entries with d == 0 exactly
  // Per pair (i < j), in pair_index order.
  std::vector<double> dot;
  std::vector<int64_t> both_nonzero, agree;  // d_i != 0 and d_j != 0; and sign(d_i) == sign(d_j)

  explicit TvAccum(int experts = 0);
  int experts() const { return static_cast<int>(sq.size()); }
  void add(const TvAccum& o);

  // Derived statistics; NaN where undefined (no entries, zero vector).
  double rel_norm(int k) const;        // ||d_k|| / ||theta_pre||
  double delta_norm(int k) const;      // ||d_k||
  double rms(int k) const;             // sqrt(mean d_k^2)
  double mean_abs(int k) const;
  double zero_frac(int k) const;       // fraction of entries with d_k == 0
  double cosine(int i, int j) const;   // <d_i, d_j> / (||d_i|| ||d_j||)
  double sign_agree(int i, int j) const;     // agree / both_nonzero
  double both_nonzero_frac(int i, int j) const;  // both_nonzero / n
};

// Index of pair (i, j), i < j, among k experts: (0,1), (0,2), ..., (1,2), ...
int pair_index(int i, int j, int experts);

// Adds entries [0, n) of a base and its experts (same length, contiguous float64;
// at most 16 experts).
void tv_accumulate(TvAccum& acc, const double* base, const std::vector<const double*>& experts, int64_t n);
// Same for tensors of one shape: read in their stored dtype when all share one of
// fp64 / fp32 / fp16 / bf16, else converted to float64 first.
TvAccum tv_accumulate(const torch::Tensor& base, const std::vector<torch::Tensor>& experts);

// Position of a tensor for these statistics, from the architecture table's
// role: "attention", "mlp", "embed_head", "norm" or "other".
std::string tv_position(const std::string& tensor);
const std::vector<std::string>& tv_positions();  // in report order, without "total"

struct TvExpert {
  std::string name;
  std::shared_ptr<Checkpoint> ckpt;
};

struct TvStatsOptions {
  // embed/lm_head rows differ between base and an expert (added tokens):
  // false = error; true = compare the rows all models have.
  bool common_vocab = false;
  int64_t chunk_elems = int64_t(1) << 21;  // entries per model read at once
  // Called with done = 0 before the first tensor, then after each tensor.
  std::function<void(size_t done, size_t total, const std::string& tensor)> progress;
};

struct TvStatsReport {
  std::string base;                   // base dir
  std::vector<std::string> experts;   // names
  std::vector<std::string> expert_paths;
  std::vector<std::string> notes;     // vocab rows compared, ...
  int64_t tensors = 0;
  std::vector<std::pair<std::string, TvAccum>> positions;  // tv_positions() present, then "total"
  std::vector<std::pair<std::string, TvAccum>> roles;      // role_name order
  std::map<int, std::vector<std::pair<std::string, TvAccum>>> layers;  // layer -> positions in it
  const TvAccum& position(const std::string& name) const;  // throws if absent
  std::string to_markdown() const;
  std::string to_json() const;
};

// Checks base and experts (same tensors, same shapes, same config sizes; one-line
// bm::Error naming the file and tensor otherwise), then streams every tensor.
TvStatsReport task_vector_stats(const std::shared_ptr<Checkpoint>& base, const std::vector<TvExpert>& experts,
                                const TvStatsOptions& opts = {});

}  // namespace bm::merging
