// The one identity of a model's weights, for results.json (provenance
// model_sha256, `bitmerge eval` model.fingerprint), cell keys and packed
// task-vector files (Checkpoint::fingerprint): two models share it only when
// they are the same bits.
#pragma once
#include <string>

namespace bm {

// A directory: sha256 over "<file>:<sha256 of the file>\n", by file name, of
// config.json, adapter_config.json, tokenizer.model and every weight file in
// full (*.safetensors, *.bin, *.index.json). A single weight file: the same
// over that one file. Large files' digests are cached by (path, inode, size,
// mtime) (harness/core/fileio.hpp sha256_file_cached), so a 13 GB checkpoint
// is read once. Throws naming the path when there is nothing to fingerprint.
std::string model_fingerprint(const std::string& path);

}  // namespace bm
