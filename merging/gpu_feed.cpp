#include "merging/gpu_feed.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "harness/core/error.hpp"

namespace bm::merging {

GpuFeed::GpuFeed(torch::Device device, std::vector<std::string> order, Views views, int64_t max_tensor_bytes, int depth)
    : device_(device),
      order_(std::move(order)),
      views_(std::move(views)),
      depth_(std::max(0, depth)),
      up_(device),
      out_pool_(max_tensor_bytes) {
  for (size_t i = 0; i < order_.size(); ++i) index_[order_[i]] = i;
  // BITMERGE_UPLOAD_READ=mmap copies from the mapped views instead of pread.
  const char* r = std::getenv("BITMERGE_UPLOAD_READ");
  pread_ = !(r && std::string(r) == "mmap");
}

GpuFeed::~GpuFeed() {
  // Copies still in flight write into queued device tensors: let them land.
  for (auto& s : queue_) {
    try {
      up_.wait(s.batch);
    } catch (...) {
    }
  }
  for (auto& [p, fd] : fds_) ::close(fd);
}

kernels::Uploader::Source GpuFeed::source_of(const torch::Tensor& view, const std::string& what) {
  kernels::Uploader::Source s;
  s.host = view.data_ptr();
  s.bytes = static_cast<int64_t>(view.nbytes());
  s.what = what;
  auto p = reinterpret_cast<uintptr_t>(s.host);
  const Mapping* hit = nullptr;
  for (int pass = 0; pass < 2 && !hit; ++pass) {
    for (auto& m : maps_)
      if (p >= m.lo && p + static_cast<uintptr_t>(s.bytes) <= m.hi) hit = &m;
    if (hit || pass) break;
    // Refresh the file-backed mappings of this process.
    maps_.clear();
    std::ifstream f("/proc/self/maps");
    std::string line;
    while (std::getline(f, line)) {
      unsigned long lo = 0, hi = 0, off = 0;
      char perms[8] = {0};
      if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx", &lo, &hi, perms, &off) != 4) continue;
      auto slash = line.find('/');
      if (slash == std::string::npos || line.find(" (deleted)") != std::string::npos) continue;
      maps_.push_back({lo, hi, static_cast<int64_t>(off), line.substr(slash)});
    }
  }
  if (!hit) return s;  // anonymous memory (a .bin or LoRA tensor): memcpy
  if (!pread_) {
    s.release = true;
    return s;
  }
  auto it = fds_.find(hit->path);
  if (it == fds_.end()) {
    int fd = ::open(hit->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {  // fall back to the mapping
      s.release = true;
      return s;
    }
    it = fds_.emplace(hit->path, fd).first;
  }
  s.fd = it->second;
  s.offset = hit->offset + static_cast<int64_t>(p - hit->lo);
  return s;
}

void GpuFeed::enqueue(size_t i) {
  Slot slot;
  slot.name = order_[i];
  auto views = views_(slot.name);
  std::vector<kernels::Uploader::Source> src;
  std::vector<torch::Tensor> dst;
  for (size_t k = 0; k < views.size(); ++k) {
    const torch::Tensor& v = views[k];
    if (!v.defined()) {
      slot.dev.emplace_back();
      continue;
    }
    auto c = v.is_contiguous() ? v : v.contiguous();
    auto d = torch::empty(c.sizes(), c.options().device(device_));
    slot.dev.push_back(d);
    if (c.numel() == 0) continue;
    src.push_back(source_of(c, slot.name + " (input " + std::to_string(k) + ")"));
    slot.host.push_back(c);
    dst.push_back(d);
  }
  slot.batch = up_.start(src, dst);
  queue_.push_back(std::move(slot));
}

void GpuFeed::prefetch(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) fail(name, "not a tensor of this merge (internal error)");
  if (queue_.empty() || queue_.front().name != name) {
    for (auto& s : queue_) up_.wait(s.batch);  // drop what was queued for another order
    queue_.clear();
    next_ = it->second;
  }
  while (next_ < order_.size() && queue_.size() < static_cast<size_t>(depth_) + 1) enqueue(next_++);
}

std::vector<torch::Tensor> GpuFeed::take(const std::string& name) {
  prefetch(name);
  Slot s = std::move(queue_.front());
  queue_.erase(queue_.begin());
  auto t0 = std::chrono::steady_clock::now();
  up_.wait(s.batch);
  s.host.clear();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s.dev;
}

}  // namespace bm::merging
