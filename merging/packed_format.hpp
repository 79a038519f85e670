// The packed task-vector file (`bitmerge compress`), a safetensors file:
//   "<tensor>.signs"  U8  [ceil(numel/8)]  1-bit signs, layout of kernels/onebit.hpp
//                                            (row-major, element e -> byte e/8, bit e%8,
//                                            LSB first, bit 1 = delta >= 0, so sign(0) = +1)
//   "<tensor>.alpha"  F16 []               alpha = mean(|delta|)
//   "<tensor>"        checkpoint dtype     uncompressed delta (embed, head, norms, and
//                                            Linear weights outside the position)
// Scheme ternary (metadata scheme = "ternary", density = the kept fraction),
// instead of .signs: "<tensor>.codes" U8 [ceil(numel/4)] 2-bit codes (layout of
// merging/task_vector.hpp TernaryCodes) and "<tensor>.alpha" F16 [].
// Scheme bitdelta (metadata scheme = "bitdelta"): the sign layout, each .alpha the
// scale fitted to the expert's logits (harness/train/bitdelta.hpp); read as sign.
// Files without a scheme key are the 1-bit sign scheme (byte-identical to before).
// __metadata__: format = "bitmerge.task_vector", format_version = "1", position,
// expert (name), expert_dir, expert_fingerprint, base_fingerprint, shapes (JSON
// object tensor -> original shape of each packed tensor).
// Readers refuse another base (fingerprint), another format or version, and
// any inconsistency (missing/extra tensors, sizes, non-finite alpha).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "merging/task_vector.hpp"

namespace bm::merging {

inline constexpr const char* kPackedFormat = "bitmerge.task_vector";
inline constexpr const char* kPackedVersion = "1";

struct CompressSummary {
  uint64_t file_bytes = 0;
  int64_t packed_tensors = 0, dense_tensors = 0;
  std::vector<std::string> notes;  // vocab notes etc.
};

// Streams tensor by tensor; writes atomically. Scheme bitdelta needs `scales`
// (tensor name -> fitted alpha, one per packed matrix; harness/train/bitdelta.hpp).
CompressSummary write_packed_task_vector(const Checkpoint& base, const Checkpoint& expert, Compression compression,
                                         const std::string& expert_name, const std::string& out_path,
                                         const std::map<std::string, float>* scales = nullptr);

// Opens a packed file as an expert for `base` (checks fingerprint and format).
std::unique_ptr<ExpertSource> open_packed_task_vector(const std::string& path, const Checkpoint& base,
                                                      const std::string& name = "");

// True when `path` is a file whose metadata says it is a packed task vector.
bool is_packed_task_vector(const std::string& path);

}  // namespace bm::merging
