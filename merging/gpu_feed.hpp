// The input side of a GPU merge (--device cuda): whole tensors of the base
// and the experts land on the device ahead of their use. Tensors are queued
// `depth` ahead in merge order; kernels::Uploader reads them (pread from the
// safetensors files, found from the mapped views' addresses, or memcpy of
// views that are not file-backed) into pinned staging buffers on worker
// threads and copies them on their own streams, so reading overlaps the GPU
// math and the output write of the tensors before.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/upload.hpp"

namespace bm::merging {

class GpuFeed {
 public:
  // For a tensor name: CPU tensors to upload (undefined entries are skipped).
  using Views = std::function<std::vector<torch::Tensor>(const std::string& name)>;
  GpuFeed(torch::Device device, std::vector<std::string> order, Views views, int64_t max_tensor_bytes, int depth = 2);
  ~GpuFeed();
  // The views of `name` on the device (same order; undefined where the view
  // was). In `order` this is served from the queue; out of order it restarts there.
  std::vector<torch::Tensor> take(const std::string& name);
  // Starts reading `name` and the tensors after it (the queue take() serves).
  void prefetch(const std::string& name);
  // Seconds spent waiting in take(), bytes uploaded, the uploader's counters.
  double wait_s() const { return wait_s_; }
  kernels::Uploader::Stats upload_stats() const { return up_.stats(); }
  int threads() const { return up_.threads(); }
  bool uses_pread() const { return pread_; }
  // Pinned host buffers for results, one size (the largest tensor's bytes).
  kernels::PinnedPool& outputs() { return out_pool_; }

 private:
  struct Slot {
    std::string name;
    std::vector<torch::Tensor> dev;
    std::vector<torch::Tensor> host;  // the sources, alive until their bytes are read
    std::shared_ptr<kernels::Uploader::Batch> batch;
  };
  void enqueue(size_t index);
  kernels::Uploader::Source source_of(const torch::Tensor& view, const std::string& what);

  torch::Device device_;
  std::vector<std::string> order_;
  std::map<std::string, size_t> index_;
  Views views_;
  int depth_;
  bool pread_ = true;
  kernels::Uploader up_;
  kernels::PinnedPool out_pool_;
  std::vector<Slot> queue_;  // in order
  size_t next_ = 0;          // order_[next_] is the next to enqueue
  double wait_s_ = 0;
  struct Mapping {
    uintptr_t lo, hi;
    int64_t offset;
    std::string path;
  };
  std::vector<Mapping> maps_;
  std::map<std::string, int> fds_;
};

}  // namespace bm::merging
