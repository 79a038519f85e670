// Host -> device copies of large byte ranges at page-cache speed (owner:
// kernels; used by the GPU merge pipeline, merging/api.cpp). Worker threads
// read pieces of each source (pread from the file, or memcpy from a mapped
// view) into their own pinned staging buffers (two each, double-buffered)
// and copy them to the device on their own streams, so reading, H2D copies
// and the caller's GPU work overlap. start() only queues; wait() blocks until
// a batch has landed. Without CUDA kernels in the build (or for CPU
// destinations) start() copies synchronously.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace bm::kernels {

class Uploader {
 public:
  struct Source {
    const void* host = nullptr;  // memory to copy from (e.g. a mapped view) when fd < 0
    int fd = -1;                 // else a file range, read with pread
    int64_t offset = 0;
    int64_t bytes = 0;
    bool release = false;  // host is a read-only file mapping: drop its pages once read (RSS)
    std::string what;      // for error messages (file: tensor)
  };
  struct Stats {
    double read_s = 0;      // worker-seconds filling staging buffers (pread / memcpy)
    double copy_wait_s = 0; // worker-seconds waiting for a staging buffer's H2D copy
    int64_t bytes = 0;
  };
  class Batch;

  // threads / chunk_bytes <= 0: defaults (env BITMERGE_UPLOAD_THREADS, default
  // 8; BITMERGE_UPLOAD_CHUNK_MB, default 8).
  Uploader(torch::Device device, int threads = 0, int64_t chunk_bytes = 0);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Queues a copy of src[i] into dst[i] (contiguous, dst[i].nbytes() ==
  // src[i].bytes), ordered after the work queued so far on the calling
  // thread's current CUDA stream (dst memory may be reused from it).
  std::shared_ptr<Batch> start(const std::vector<Source>& src, const std::vector<torch::Tensor>& dst);
  // Blocks until every byte of the batch is on the device; throws bm::Error
  // naming the source on a read error.
  void wait(const std::shared_ptr<Batch>& b);
  Stats stats() const;
  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Page-locked host buffers of one size, reused (the GPU merge's outputs):
// take() returns a CPU tensor viewing a free buffer (allocated on first need,
// no rounding to powers of two as torch's pinned cache does); the buffer goes
// back to the pool when the tensor and its views die, and is freed when the
// pool and every tensor are gone. Without CUDA kernels: plain CPU tensors.
class PinnedPool {
 public:
  explicit PinnedPool(int64_t buffer_bytes);
  ~PinnedPool();
  // shape/dtype must fit buffer_bytes (else a plain pinned torch tensor).
  torch::Tensor take(const std::vector<int64_t>& shape, torch::Dtype dtype);
  int64_t buffers() const;  // allocated so far

 private:
  struct State;
  std::shared_ptr<State> s_;
};

// Reads [offset, offset+bytes) of fd into dst completely (pread, retried on
// EINTR / short reads); throws bm::Error naming `what` on failure or EOF.
void pread_all(int fd, void* dst, int64_t bytes, int64_t offset, const std::string& what);

}  // namespace bm::kernels
