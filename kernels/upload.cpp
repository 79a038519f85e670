// Uploader: pinned double-buffered staging per worker thread, one stream
// each (see upload.hpp).
#include "kernels/upload.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <torch/torch.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "harness/core/error.hpp"

#ifdef BITMERGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#endif

namespace bm::kernels {

void pread_all(int fd, void* dst, int64_t bytes, int64_t offset, const std::string& what) {
  auto* p = static_cast<uint8_t*>(dst);
  while (bytes > 0) {
    ssize_t r = ::pread(fd, p, static_cast<size_t>(bytes), static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(what, std::string("read failed: ") + std::strerror(errno) + "; check the file and the disk");
    if (r == 0) fail(what, "file ends before the tensor's data; the file is truncated, re-download it");
    p += r;
    bytes -= r;
    offset += r;
  }
}

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void release_range(const void* p, int64_t n) {
  static const long page = sysconf(_SC_PAGESIZE);
  auto s = reinterpret_cast<uintptr_t>(p), e = s + static_cast<uintptr_t>(n);
  uintptr_t a = (s + page - 1) / page * page, b = e / page * page;  // whole pages inside only
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  if (!v || !*v) return def;
  int x = std::atoi(v);
  return x > 0 ? x : def;
}

// Fills dst from a source piece (pread or memcpy).
void fill(const Uploader::Source& s, int64_t off, int64_t n, void* dst) {
  if (s.fd >= 0) {
    pread_all(s.fd, dst, n, s.offset + off, s.what);
  } else {
    const auto* src = static_cast<const uint8_t*>(s.host) + off;
    std::memcpy(dst, src, static_cast<size_t>(n));
    if (s.release) release_range(src, n);
  }
}
}  // namespace

class Uploader::Batch {
 public:
  std::atomic<int64_t> left{0};
  std::mutex m;
  std::condition_variable cv;
  std::string error;
  std::atomic<bool> failed{false};
#ifdef BITMERGE_WITH_CUDA
  cudaEvent_t ready = nullptr;
  ~Batch() {
    if (ready) cudaEventDestroy(ready);
  }
#endif
  void done() {
    if (left.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> g(m);
      cv.notify_all();
    }
  }
  void fail_with(const std::string& e) {
    std::lock_guard<std::mutex> g(m);
    if (error.empty()) error = e;
    failed = true;
  }
};

struct Uploader::Impl {
  torch::Device device{torch::kCPU};
  int nthreads = 8;
  int64_t chunk = 8 << 20;
  struct Piece {
    std::shared_ptr<Batch> batch;
    std::shared_ptr<const Source> src;
    int64_t off = 0, n = 0;
    uint8_t* dst = nullptr;
  };
  std::mutex m;
  std::condition_variable cv;
  std::deque<Piece> q;
  bool stop = false;
  std::vector<std::thread> workers;
  std::mutex stats_m;
  Stats stats;

#ifdef BITMERGE_WITH_CUDA
  void worker() {
    cudaSetDevice(device.index() < 0 ? 0 : device.index());
    cudaStream_t stream = nullptr;
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    void* buf[2] = {nullptr, nullptr};
    cudaEvent_t ev[2] = {nullptr, nullptr};
    std::shared_ptr<Batch> pending[2];
    std::string setup_error;
    for (int i = 0; i < 2; ++i) {
      if (cudaHostAlloc(&buf[i], static_cast<size_t>(chunk), cudaHostAllocDefault) != cudaSuccess)
        setup_error = "cannot allocate pinned staging memory";
      cudaEventCreateWithFlags(&ev[i], cudaEventDisableTiming);
    }
    auto add = [&](double read_s, double wait_s, int64_t bytes) {
      std::lock_guard<std::mutex> g(stats_m);
      stats.read_s += read_s;
      stats.copy_wait_s += wait_s;
      stats.bytes += bytes;
    };
    int slot = 0;
    auto retire = [&](int s) {
      if (!pending[s]) return;
      auto t0 = Clock::now();
      cudaError_t e = cudaEventSynchronize(ev[s]);
      add(0, since(t0), 0);
      if (e != cudaSuccess) pending[s]->fail_with(std::string("host-to-device copy failed: ") + cudaGetErrorString(e));
      pending[s]->done();
      pending[s].reset();
    };
    while (true) {
      Piece p;
      {
        std::unique_lock<std::mutex> lk(m);
        if (q.empty() && (pending[0] || pending[1])) {
          lk.unlock();  // idle: finish what is in flight first so waiters wake
          retire(slot ^ 1);
          retire(slot);
          lk.lock();
        }
        cv.wait(lk, [&] { return stop || !q.empty(); });
        if (q.empty()) break;  // stop
        p = std::move(q.front());
        q.pop_front();
      }
      retire(slot);  // its buffer is reused now
      if (!setup_error.empty()) p.batch->fail_with(setup_error);
      if (p.batch->failed) {
        p.batch->done();
        continue;
      }
      try {
        auto t0 = Clock::now();
        fill(*p.src, p.off, p.n, buf[slot]);
        add(since(t0), 0, p.n);
      } catch (const std::exception& e) {
        p.batch->fail_with(e.what());
        p.batch->done();
        continue;
      }
      cudaStreamWaitEvent(stream, p.batch->ready, 0);
      cudaError_t e = cudaMemcpyAsync(p.dst, buf[slot], static_cast<size_t>(p.n), cudaMemcpyHostToDevice, stream);
      if (e == cudaSuccess) e = cudaEventRecord(ev[slot], stream);
      if (e != cudaSuccess) {
        p.batch->fail_with(std::string("host-to-device copy failed: ") + cudaGetErrorString(e));
        p.batch->done();
        continue;
      }
      pending[slot] = p.batch;
      slot ^= 1;
    }
    retire(0);
    retire(1);
    for (int i = 0; i < 2; ++i) {
      if (buf[i]) cudaFreeHost(buf[i]);
      if (ev[i]) cudaEventDestroy(ev[i]);
    }
    if (stream) cudaStreamDestroy(stream);
  }
#endif
};

Uploader::Uploader(torch::Device device, int threads, int64_t chunk_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  impl_->nthreads = threads > 0 ? threads : env_int("BITMERGE_UPLOAD_THREADS", 8);
  impl_->chunk = chunk_bytes > 0 ? chunk_bytes : int64_t(env_int("BITMERGE_UPLOAD_CHUNK_MB", 8)) << 20;
#ifdef BITMERGE_WITH_CUDA
  if (device.is_cuda())
    for (int i = 0; i < impl_->nthreads; ++i) impl_->workers.emplace_back([this] { impl_->worker(); });
#endif
}

Uploader::~Uploader() {
  {
    std::lock_guard<std::mutex> g(impl_->m);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

int Uploader::threads() const { return impl_->workers.empty() ? 1 : impl_->nthreads; }

Uploader::Stats Uploader::stats() const {
  std::lock_guard<std::mutex> g(impl_->stats_m);
  return impl_->stats;
}

std::shared_ptr<Uploader::Batch> Uploader::start(const std::vector<Source>& src, const std::vector<torch::Tensor>& dst) {
  const char* where = "Uploader::start";
  if (src.size() != dst.size()) fail(where, "sources and destinations differ in number (internal error)");
  for (size_t i = 0; i < src.size(); ++i) {
    if (!dst[i].defined() || !dst[i].is_contiguous() || static_cast<int64_t>(dst[i].nbytes()) != src[i].bytes)
      fail(src[i].what, "upload destination is not a contiguous tensor of the source's size (internal error)");
    if (src[i].fd < 0 && !src[i].host && src[i].bytes > 0) fail(src[i].what, "upload source has no data (internal error)");
  }
  auto b = std::make_shared<Batch>();
#ifdef BITMERGE_WITH_CUDA
  if (!impl_->workers.empty()) {
    for (auto& d : dst)
      if (d.device() != impl_->device && !(d.is_cuda() && impl_->device.is_cuda() && impl_->device.index() < 0))
        fail(where, "destination on " + c10::str(d.device()) + " but the uploader copies to " + c10::str(impl_->device));
    cudaEventCreateWithFlags(&b->ready, cudaEventDisableTiming);
    cudaEventRecord(b->ready, at::cuda::getCurrentCUDAStream());
    std::vector<Impl::Piece> pieces;
    for (size_t i = 0; i < src.size(); ++i) {
      auto s = std::make_shared<const Source>(src[i]);
      auto* d = static_cast<uint8_t*>(dst[i].data_ptr());
      for (int64_t off = 0; off < s->bytes; off += impl_->chunk)
        pieces.push_back({b, s, off, std::min(impl_->chunk, s->bytes - off), d + off});
    }
    b->left = static_cast<int64_t>(pieces.size());
    {
      std::lock_guard<std::mutex> g(impl_->m);
      for (auto& p : pieces) impl_->q.push_back(std::move(p));
    }
    impl_->cv.notify_all();
    return b;
  }
#endif
  // Synchronous fallback.
  auto t0 = Clock::now();
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i].bytes == 0) continue;
    auto host = torch::empty({src[i].bytes}, torch::TensorOptions().dtype(torch::kUInt8));
    try {
      fill(src[i], 0, src[i].bytes, host.data_ptr());
    } catch (const std::exception& e) {
      b->fail_with(e.what());
      break;
    }
    dst[i].view({-1}).view(torch::kUInt8).copy_(host);
  }
  std::lock_guard<std::mutex> g(impl_->stats_m);
  impl_->stats.read_s += since(t0);
  for (auto& s : src) impl_->stats.bytes += s.bytes;
  return b;
}

void Uploader::wait(const std::shared_ptr<Batch>& b) {
  if (!b) return;
  {
    std::unique_lock<std::mutex> lk(b->m);
    b->cv.wait(lk, [&] { return b->left.load() <= 0; });
  }
  if (b->failed) throw Error(b->error);  // already "<file: tensor>: <what>; <do>"
}

struct PinnedPool::State {
  int64_t bytes = 0;
  std::mutex m;
  std::vector<void*> free, all;
  ~State() {
#ifdef BITMERGE_WITH_CUDA
    for (void* p : all) cudaFreeHost(p);
#endif
  }
};

PinnedPool::PinnedPool(int64_t buffer_bytes) : s_(std::make_shared<State>()) { s_->bytes = buffer_bytes; }
PinnedPool::~PinnedPool() = default;

int64_t PinnedPool::buffers() const {
  std::lock_guard<std::mutex> g(s_->m);
  return static_cast<int64_t>(s_->all.size());
}

torch::Tensor PinnedPool::take(const std::vector<int64_t>& shape, torch::Dtype dtype) {
  auto opts = torch::TensorOptions().dtype(dtype);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const int64_t need = n * static_cast<int64_t>(c10::elementSize(dtype));
#ifdef BITMERGE_WITH_CUDA
  if (need > 0 && need <= s_->bytes) {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> g(s_->m);
      if (!s_->free.empty()) {
        p = s_->free.back();
        s_->free.pop_back();
      }
    }
    if (!p) {
      if (cudaHostAlloc(&p, static_cast<size_t>(s_->bytes), cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        return torch::empty(shape, opts.pinned_memory(true));
      }
      std::lock_guard<std::mutex> g(s_->m);
      s_->all.push_back(p);
    }
    std::shared_ptr<State> st = s_;
    return torch::from_blob(
        p, shape,
        [st](void* q) {
          std::lock_guard<std::mutex> g(st->m);
          st->free.push_back(q);
        },
        opts);
  }
  return torch::empty(shape, opts.pinned_memory(true));
#else
  (void)need;
  return torch::empty(shape, opts);
#endif
}

}  // namespace bm::kernels
