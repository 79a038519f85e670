#include "harness/core/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm {
using json = nlohmann::json;

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
  for (auto& [n, d] : table)
    if (s == n) return *out = d, true;
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// ---------------------------------------------------------------- mapping
MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("cannot memory-map: ") + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---------------------------------------------------------------- reader
SafetensorsFile::SafetensorsFile(const std::string& path) : map_(std::make_shared<MappedFile>(path)) {
  const std::string hint = "; the file is damaged or not safetensors: re-download or re-save it";
  const size_t size = map_->size();
  if (size < 8) fail(path, "truncated: " + std::to_string(size) + " bytes, shorter than the 8-byte header length" + hint);
  uint64_t n = 0;
  std::memcpy(&n, map_->data(), 8);  // little-endian by spec; x86/ARM hosts are LE
  if (n > 100u * 1024 * 1024) fail(path, "header length " + std::to_string(n) + " is implausible (over 100 MiB)" + hint);
  if (8 + n > size)
    fail(path, "truncated: header says " + std::to_string(n) + " header bytes but the file has " +
                   std::to_string(size - 8) + " after the length" + hint);
  json header;
  try {
    header = json::parse(map_->data() + 8, map_->data() + 8 + n);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")" + hint);
  }
  if (!header.is_object()) fail(path, "header is not a JSON object" + hint);
  data_start_ = map_->data() + 8 + n;
  const uint64_t data_size = size - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(path, "__metadata__ is not an object" + hint);
      for (auto m = it->begin(); m != it->end(); ++m)
        metadata_[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const std::string where = path + ": tensor '" + it.key() + "'";
    const json& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw Error(where + ": entry lacks dtype, shape or data_offsets" + hint);
    TensorInfo t;
    t.name = it.key();
    if (!e["dtype"].is_string() || !parse_dtype(e["dtype"].get<std::string>(), &t.dtype))
      throw Error(where + ": unsupported dtype " + e["dtype"].dump() +
                  " (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL); convert the checkpoint to fp16/bf16/fp32");
    if (!e["shape"].is_array()) throw Error(where + ": shape is not a list" + hint);
    for (auto& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw Error(where + ": bad dimension " + d.dump() + hint);
      t.shape.push_back(d.get<int64_t>());
    }
    auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + ": data_offsets must be two non-negative integers" + hint);
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en) throw Error(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] are reversed" + hint);
    if (en > data_size)
      throw Error(where + ": data ends at byte " + std::to_string(en) + " but the file holds only " +
                  std::to_string(data_size) + " data bytes (truncated download?)" + hint);
    t.offset = b;
    t.nbytes = en - b;
    uint64_t want = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
    if (want != t.nbytes)
      throw Error(where + ": shape " + shape_str(t.shape) + " x " + dtype_name(t.dtype) + " needs " +
                  std::to_string(want) + " bytes but data_offsets span " + std::to_string(t.nbytes) + hint);
    tensors_.push_back(std::move(t));
  }
  // Offsets must not overlap (a lying header could alias two tensors).
  std::vector<const TensorInfo*> by_off;
  for (auto& t : tensors_) by_off.push_back(&t);
  std::sort(by_off.begin(), by_off.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_off.size(); ++i)
    if (by_off[i]->nbytes > 0 && by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset)
      fail(path, "tensors '" + by_off[i - 1]->name + "' and '" + by_off[i]->name + "' overlap in the data section" + hint);
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(path(), "no tensor named '" + name + "'");
  return *t;
}

// ---------------------------------------------------------------- writer
struct SafetensorsWriter::Impl {
  std::string path;
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> decl;
  std::unique_ptr<AtomicFile> file;
  size_t cur = 0;         // tensor being written
  uint64_t cur_done = 0;  // bytes of it written so far
  uint64_t total = 0;
  bool finished = false;
  // Write-behind: every 64 MiB, start the disk write-out of what is written
  // so far (sync_file_range), so that commit()'s fsync finds little left.
  // (Measured on the device: a helper thread doing this instead lets the
  // writer run ahead of the disk but leaves the same total to fsync.)
  int wb_fd = -1;
  uint64_t since_kick = 0;
  ~Impl() { close_writeback(); }
  void kick_writeback(uint64_t nbytes) {
    since_kick += nbytes;
    if (since_kick < (64u << 20)) return;
    since_kick = 0;
    file->stream().flush();  // into the page cache
    if (wb_fd < 0) wb_fd = ::open(file->temp_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (wb_fd >= 0) ::sync_file_range(wb_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  void close_writeback() {
    if (wb_fd >= 0) ::close(wb_fd);
    wb_fd = -1;
  }

  void begin() {
    json h = json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    uint64_t off = 0;
    for (auto& t : decl) {
      t.offset = off;
      t.nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
      h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
      off += t.nbytes;
    }
    total = off;
    std::string hs = h.dump();
    while ((8 + hs.size()) % 8) hs.push_back(' ');  // keep tensor data 8-byte aligned
    file = std::make_unique<AtomicFile>(path);
    uint64_t n = hs.size();
    file->stream().write(reinterpret_cast<const char*>(&n), 8);
    file->stream().write(hs.data(), static_cast<std::streamsize>(hs.size()));
  }
};

SafetensorsWriter::SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(path);
  impl_->metadata = std::move(metadata);
}
SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  if (impl_->file) fail(impl_->path, "declare('" + name + "') after writing began (internal error)");
  for (auto& t : impl_->decl)
    if (t.name == name) fail(impl_->path, "tensor '" + name + "' declared twice (internal error)");
  TensorInfo t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  impl_->decl.push_back(std::move(t));
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t nbytes) {
  auto& I = *impl_;
  if (!I.file) I.begin();
  if (nbytes == 0) {  // e.g. a zero-size tensor, possibly "written" more than once: nothing to do
    for (auto& t : I.decl)
      if (t.name == name) return;
    fail(I.path, "tensor '" + name + "' was not declared (internal error)");
  }
  while (I.cur < I.decl.size() && I.decl[I.cur].nbytes == 0 && I.decl[I.cur].name != name) ++I.cur;
  if (I.cur >= I.decl.size() || I.decl[I.cur].name != name)
    fail(I.path, "tensor '" + name + "' written out of declaration order (internal error)");
  auto& t = I.decl[I.cur];
  if (I.cur_done + nbytes > t.nbytes)
    fail(I.path, "tensor '" + name + "': " + std::to_string(I.cur_done + nbytes) + " bytes written, " +
                     std::to_string(t.nbytes) + " declared (internal error)");
  I.file->stream().write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  I.kick_writeback(nbytes);
  I.cur_done += nbytes;
  if (I.cur_done == t.nbytes) ++I.cur, I.cur_done = 0;
}

void SafetensorsWriter::finish() {
  auto& I = *impl_;
  if (!I.file) I.begin();
  while (I.cur < I.decl.size() && I.decl[I.cur].nbytes == 0) ++I.cur;
  if (I.cur != I.decl.size()) fail(I.path, "tensor '" + I.decl[I.cur].name + "' was declared but not written (internal error)");
  I.close_writeback();
  I.file->commit();
  I.finished = true;
}

uint64_t SafetensorsWriter::total_bytes() const { return impl_->total; }

// ---------------------------------------------------------------- sharded
struct ShardedSafetensorsWriter::Impl {
  std::string dir, prefix;
  uint64_t max_bytes;
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> decl;
  std::vector<std::vector<size_t>> shards;  // indices into decl
  std::map<std::string, size_t> shard_of;
  std::unique_ptr<SafetensorsWriter> cur;
  size_t cur_shard = SIZE_MAX;
  std::vector<std::string> written_files;

  std::string shard_name(size_t i) const {
    if (shards.size() == 1) return prefix + ".safetensors";
    char buf[64];
    std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    return prefix + buf;
  }
  void plan() {
    uint64_t acc = 0;
    for (size_t i = 0; i < decl.size(); ++i) {
      uint64_t nb = static_cast<uint64_t>(decl[i].numel()) * dtype_size(decl[i].dtype);
      if (shards.empty() || (acc > 0 && acc + nb > max_bytes)) shards.emplace_back(), acc = 0;
      shards.back().push_back(i);
      shard_of[decl[i].name] = shards.size() - 1;
      acc += nb;
    }
    if (shards.empty()) shards.emplace_back();
  }
  void open_shard(size_t s) {
    if (cur) cur->finish(), written_files.push_back(shard_name(cur_shard));
    cur = std::make_unique<SafetensorsWriter>(dir + "/" + shard_name(s), metadata);
    for (size_t i : shards[s]) cur->declare(decl[i].name, decl[i].dtype, decl[i].shape);
    cur_shard = s;
  }
};

ShardedSafetensorsWriter::ShardedSafetensorsWriter(std::string dir, uint64_t max_shard_bytes,
                                                   std::map<std::string, std::string> metadata, std::string prefix)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(dir);
  impl_->prefix = std::move(prefix);
  impl_->max_bytes = max_shard_bytes;
  impl_->metadata = std::move(metadata);
  make_dirs(impl_->dir);
}
ShardedSafetensorsWriter::~ShardedSafetensorsWriter() = default;

void ShardedSafetensorsWriter::declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  TensorInfo t;
  t.name = name, t.dtype = dtype, t.shape = shape;
  impl_->decl.push_back(std::move(t));
}

void ShardedSafetensorsWriter::write(const std::string& name, const void* data, size_t nbytes) {
  auto& I = *impl_;
  if (I.shards.empty()) I.plan();
  auto it = I.shard_of.find(name);
  if (it == I.shard_of.end()) fail(I.dir, "tensor '" + name + "' was not declared (internal error)");
  if (it->second != I.cur_shard) {
    if (I.cur_shard != SIZE_MAX && it->second < I.cur_shard) fail(I.dir, "tensor '" + name + "' written out of order (internal error)");
    I.open_shard(it->second);
  }
  I.cur->write(name, data, nbytes);
}

void ShardedSafetensorsWriter::finish() {
  auto& I = *impl_;
  if (I.shards.empty()) I.plan();
  while (I.cur_shard == SIZE_MAX || I.cur_shard + 1 < I.shards.size())
    I.open_shard(I.cur_shard == SIZE_MAX ? 0 : I.cur_shard + 1);  // empty trailing shards (zero-size tensors)
  I.cur->finish();
  I.written_files.push_back(I.shard_name(I.cur_shard));
  if (I.shards.size() > 1) {
    json idx;
    uint64_t total = 0;
    for (auto& t : I.decl) total += static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
    idx["metadata"] = {{"total_size", total}};
    for (auto& t : I.decl) idx["weight_map"][t.name] = I.shard_name(I.shard_of[t.name]);
    write_file_atomic(I.dir + "/" + I.prefix + ".safetensors.index.json", idx.dump(2));
  }
}

}  // namespace bm
