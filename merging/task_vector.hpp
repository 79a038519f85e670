// Task vectors: delta_k = theta_k - theta_pre per tensor, from a full expert
// checkpoint (optionally 1-bit compressed on the fly) or from a packed file
// written by `bitmerge compress`. Compatibility of base and experts is checked
// from headers only, before any weight is read.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "kernels/onebit.hpp"

namespace bm::merging {

// One expert's task vector for one tensor: dense fp32 or 1-bit packed
// (ternary-compressed matrices are dense fp32 in memory).
struct Delta {
  torch::Tensor dense;  // fp32 when !is_packed; embed/head may have fewer rows than the base (vocab)
  bool is_packed = false;
  kernels::Packed packed;
  torch::Tensor to_dense() const;  // fp32 (alpha * sign for packed)
  int64_t rows() const;            // size of dim 0 (1 for scalars)
  Delta to(const torch::Device& d) const;
};

// The ternary (top-k sign) scheme of one matrix (harness/models/arch.hpp Scheme::Ternary):
// the max(1, floor(density*numel)) largest |d| (ties in index order, as the
// TIES trim) become alpha * sign(d), the rest 0; alpha = mean |d| of the kept
// nonzero entries, rounded to fp16 as stored. fp32, d's shape and device.
torch::Tensor ternary_topk(const torch::Tensor& d, double density);
// Its stored form: 2-bit codes, element e in byte e/4 at bits 2*(e%4) (LSB
// first), 0 = zero, 1 = +alpha, 2 = -alpha (3 is invalid); alpha fp16 scalar.
struct TernaryCodes {
  torch::Tensor codes;  // uint8 [ceil(numel/4)], CPU
  torch::Tensor alpha;  // fp16 scalar, CPU
};
TernaryCodes pack_ternary(const torch::Tensor& ternary);  // from ternary_topk's output
// Inverse (fp32, `shape`, on `device`); throws naming `where` on code 3.
torch::Tensor unpack_ternary(const TernaryCodes& t, const std::vector<int64_t>& shape, const torch::Device& device,
                             const std::string& where);

// Is `tensor` (of the given role and rank) 1-bit compressed at position p?
// Only 2-D Linear weights; never embeddings, lm_head or norms.
bool compressed_at(Position p, const std::string& tensor, int64_t dim);

// Where an expert's task vector comes from.
class ExpertSource {
 public:
  virtual ~ExpertSource() = default;
  const std::string& name() const { return name_; }
  virtual std::string path() const = 0;
  virtual Position position() const = 0;  // compression position (None = full precision)
  virtual Compression compression() const { return Compression(position()); }  // position + scheme
  virtual std::vector<std::string> names() const = 0;
  virtual bool has(const std::string& tensor) const = 0;
  virtual std::vector<int64_t> shape(const std::string& tensor) const = 0;
  virtual const ModelConfig* config() const { return nullptr; }  // full checkpoints only
  // base_f32: the base tensor as fp32 on CPU.
  virtual Delta delta(const std::string& tensor, const torch::Tensor& base_f32) const = 0;
  // Row slices (streaming merges of large tensors): can rows of `tensor` be
  // read alone (dense, not 1-bit)? delta_rows: rows [row0, row0 + base_rows.size(0)).
  virtual bool can_slice(const std::string& tensor) const { (void)tensor; return false; }
  virtual Delta delta_rows(const std::string& tensor, const torch::Tensor& base_rows_f32, int64_t row0) const;
  // GPU merges: the expert's stored tensor as a CPU view (full checkpoints;
  // undefined otherwise) so that it can be uploaded ahead of use, and delta()
  // from that tensor once it is on base_f32's device.
  virtual torch::Tensor stored(const std::string& tensor) const { (void)tensor; return {}; }
  virtual Delta delta_with(const std::string& tensor, const torch::Tensor& base_f32,
                           const torch::Tensor& stored_on_device) const {
    (void)stored_on_device;
    return delta(tensor, base_f32);
  }
  // The full checkpoint when this expert is an uncompressed model (routing copies it).
  virtual std::shared_ptr<Checkpoint> checkpoint() const { return nullptr; }

 protected:
  std::string name_;
};

// A full expert checkpoint; compressed (at its position, by its scheme) when the position is not None.
std::unique_ptr<ExpertSource> expert_from_checkpoint(const std::string& name, std::shared_ptr<Checkpoint> ckpt,
                                                     Compression compression);

// Vocab-size mismatch of embed/lm_head: the common rows are merged.
struct VocabNote {
  std::string expert, tensor;
  int64_t base_rows = 0, expert_rows = 0;
};
struct Compatibility {
  std::vector<VocabNote> vocab;
  std::vector<std::string> lines() const;  // human-readable report
};
// Same architecture, same tensor names, same shapes (embed/head rows may differ).
// Throws bm::Error naming the file and tensor otherwise.
Compatibility check_compatible(const Checkpoint& base, const std::vector<const ExpertSource*>& experts);

// Throws bm::Error naming the tensor and the first non-finite index.
void check_finite(const torch::Tensor& t, const std::string& where);

// delta = expert - base over the common rows, fp32, checked finite.
torch::Tensor dense_delta(const torch::Tensor& base_f32, const torch::Tensor& expert, const std::string& where);

// Hint to the kernel that a memory-mapped view's pages can go (keeps the RSS
// of a streaming merge near one tensor's size). No-op for other memory.
void release_pages(const torch::Tensor& t);

}  // namespace bm::merging
