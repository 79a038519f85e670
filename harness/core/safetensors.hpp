// safetensors read (memory-mapped, zero-copy, fully validated header) and
// write (streamed: declare tensors, then write bytes in order; atomic).
// Torch-free: harness/models/checkpoint.hpp turns entries into tensors.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bm {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType d);
const char* dtype_name(DType d);  // safetensors spelling: "F32", "BF16", ...
bool parse_dtype(const std::string& s, DType* out);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
};

std::string shape_str(const std::vector<int64_t>& shape);  // "[4096, 11008]"

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return map_->path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& at(const std::string& name) const;  // throws naming the file and tensor
  const uint8_t* data(const TensorInfo& t) const { return data_start_ + t.offset; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Keeps the mapping alive for views handed out (e.g. torch::from_blob).
  std::shared_ptr<const MappedFile> mapping() const { return map_; }

 private:
  std::shared_ptr<const MappedFile> map_;
  const uint8_t* data_start_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  void declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
  // Bytes of the next declared tensor, in declaration order; may be called
  // several times per tensor (chunks) as long as the total matches.
  void write(const std::string& name, const void* data, size_t nbytes);
  void finish();  // checks every tensor was written, then renames into place
  uint64_t total_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An HF-style sharded writer: model.safetensors when everything fits in one
// shard, else model-0000i-of-0000N.safetensors + model.safetensors.index.json.
class ShardedSafetensorsWriter {
 public:
  ShardedSafetensorsWriter(std::string dir, uint64_t max_shard_bytes,
                           std::map<std::string, std::string> metadata = {},
                           std::string prefix = "model");
  ~ShardedSafetensorsWriter();
  void declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
  void write(const std::string& name, const void* data, size_t nbytes);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bm
