// Bandwidth of the 1-bit CUDA kernels (raw launchers, preallocated buffers)
// as GB/s of bytes read + written, and as a ratio to cudaMemcpyAsync D2D of
// the same traffic (x_copy; target >= 0.80). Timed with CUDA events, 20
// back-to-back launches per iteration.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "bm_git_commit.h"
#include "kernels/decode_cuda.h"
#include "kernels/onebit_cuda.h"

namespace kc = bm::kernels::cuda;

namespace {

constexpr int kReps = 20;
constexpr int64_t kRows = 4096, kCols = 11008;  // one LLaMA-7B MLP matrix

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Seconds for one launch of `fn`, averaged over kReps back-to-back launches.
template <class F>
double time_once(F&& fn) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  check(cudaEventRecord(a, 0), "record");
  for (int i = 0; i < kReps; ++i) fn();
  check(cudaEventRecord(b, 0), "record");
  check(cudaEventSynchronize(b), "sync");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / 1e3 / kReps;
}

// GB/s of a D2D copy moving `traffic` bytes (traffic/2 read + traffic/2 written); best of 10.
double copy_gbps(int64_t traffic) {
  static std::map<int64_t, double> cache;
  auto it = cache.find(traffic);
  if (it != cache.end()) return it->second;
  const int64_t half = traffic / 2;
  void *src = nullptr, *dst = nullptr;
  check(cudaMalloc(&src, half), "malloc");
  check(cudaMalloc(&dst, half), "malloc");
  check(cudaMemset(src, 1, half), "memset");
  double best = 1e30;
  for (int r = 0; r < 10; ++r)
    best = std::min(best, time_once([&] { check(cudaMemcpyAsync(dst, src, half, cudaMemcpyDeviceToDevice, 0), "copy"); }));
  cudaFree(src);
  cudaFree(dst);
  return cache[traffic] = 2.0 * half / best / 1e9;
}

template <class F>
void run(benchmark::State& st, int64_t traffic, F&& launch) {
  launch();
  check(cudaDeviceSynchronize(), "warmup");
  double total = 0;
  for (auto _ : st) {
    const double s = time_once(launch);
    st.SetIterationTime(s);
    total += s;
  }
  const double gbps = traffic / (total / st.iterations()) / 1e9;
  const double copy = copy_gbps(traffic);
  st.counters["GB/s"] = gbps;
  st.counters["copy_GB/s"] = copy;
  st.counters["x_copy"] = gbps / copy;
  st.SetBytesProcessed(static_cast<int64_t>(traffic) * st.iterations());
}

torch::Dtype torch_dtype(kc::DType d) {
  return d == kc::DType::F32 ? torch::kFloat32 : d == kc::DType::F16 ? torch::kFloat16 : torch::kBFloat16;
}
int64_t esize(kc::DType d) { return d == kc::DType::F32 ? 4 : 2; }
const char* dname(kc::DType d) { return d == kc::DType::F32 ? "f32" : d == kc::DType::F16 ? "f16" : "bf16"; }
torch::TensorOptions on_gpu(torch::Dtype d) { return torch::TensorOptions().dtype(d).device(torch::kCUDA); }

void bm_pack(benchmark::State& st, kc::DType dt, int64_t n) {
  auto x = torch::randn({n}, on_gpu(torch_dtype(dt)));
  auto bits = torch::empty({(n + 7) / 8}, on_gpu(torch::kUInt8));
  auto alpha = torch::empty({}, on_gpu(torch::kFloat16));
  auto ws = torch::empty({kc::pack_signs_workspace_floats(n)}, on_gpu(torch::kFloat32));
  run(st, n * esize(dt) + (n + 7) / 8, [&] {
    check(kc::pack_signs(x.data_ptr(), dt, n, bits.data_ptr<uint8_t>(), alpha.data_ptr(), ws.data_ptr<float>(), 0),
          "pack");
  });
}

void bm_unpack(benchmark::State& st, kc::DType dt, int64_t n, bool accumulate) {
  auto w = torch::randn({n}, on_gpu(torch_dtype(dt)));
  auto bits = torch::randint(0, 256, {(n + 7) / 8}, on_gpu(torch::kUInt8));
  auto alpha = torch::full({}, 1e-4, on_gpu(torch::kFloat16));
  const int64_t traffic = (accumulate ? 2 : 1) * n * esize(dt) + (n + 7) / 8;
  run(st, traffic, [&] {
    check(kc::unpack_add(w.data_ptr(), dt, n, bits.data_ptr<uint8_t>(), alpha.data_ptr(), 1.0,
                         accumulate, 0),
          "unpack");
  });
}

// Three task vectors (the paper's Chat/Math/Code): `dense` of them bf16, the rest packed.
void bm_ties(benchmark::State& st, int dense, int64_t n) {
  std::vector<torch::Tensor> keep;
  std::vector<kc::CombineInput> in(3);
  int64_t traffic = n * 4;  // fp32 output
  for (int k = 0; k < 3; ++k) {
    in[k].weight = 1.0f;
    if (k < dense) {
      keep.push_back(torch::randn({n}, on_gpu(torch::kBFloat16)));
      in[k].dense = keep.back().data_ptr();
      in[k].dtype = kc::DType::BF16;
      traffic += n * 2;
    } else {
      keep.push_back(torch::randint(0, 256, {(n + 7) / 8}, on_gpu(torch::kUInt8)));
      in[k].bits = keep.back().data_ptr<uint8_t>();
      keep.push_back(torch::full({}, 1e-3, on_gpu(torch::kFloat16)));
      in[k].alpha_fp16 = keep.back().data_ptr();
      traffic += (n + 7) / 8;
    }
  }
  auto out = torch::empty({n}, on_gpu(torch::kFloat32));
  run(st, traffic, [&] {
    check(kc::ties_combine(in.data(), 3, n, true, true, out.data_ptr<float>(), 0), "ties");
  });
}

// Decode attention (kernels/decode.cu) over `keys` cached slots per row, every
// row seeing all of them: traffic = K + V of those slots (bf16) + q + out.
void bm_decode_attn(benchmark::State& st, int64_t rows, int nh, int nkv, int64_t keys) {
  const int D = 128;
  auto o = on_gpu(torch::kBFloat16);
  auto q = torch::randn({rows, nh, D}, o);
  auto ck = torch::randn({rows, nkv, keys, D}, o), cv = torch::randn({rows, nkv, keys, D}, o);
  auto slot = torch::full({rows}, keys - 1, on_gpu(torch::kInt64)), start = torch::zeros({rows}, on_gpu(torch::kInt64));
  const int splits = kc::decode_attention_splits(rows, nkv, keys, D, nh / nkv);
  auto ws = torch::empty({kc::decode_attention_workspace_floats(rows, nh, splits, D)}, on_gpu(torch::kFloat32));
  auto out = torch::empty({rows, nh * D}, o);
  const int64_t traffic = 2 * rows * nkv * keys * D * 2 + 2 * rows * nh * D * 2;
  st.counters["splits"] = splits;
  run(st, traffic, [&] {
    check(kc::decode_attention(q.data_ptr(), ck.data_ptr(), cv.data_ptr(), rows, nh, nkv, D, keys, keys,
                               slot.data_ptr<int64_t>(), start.data_ptr<int64_t>(), 0, 0.088f, splits,
                               ws.data_ptr<float>(), out.data_ptr(), kc::DType::BF16, 0),
          "decode_attention");
  });
}

void register_all() {
  struct A { const char* name; int64_t rows; int nh, nkv; int64_t keys; };
  for (const A& a : {A{"llama7b_rows128_keys512", 128, 32, 32, 512}, A{"llama7b_rows160_keys300", 160, 32, 32, 300},
                     A{"llama7b_rows1_keys4096", 1, 32, 32, 4096}, A{"mistral7b_rows64_keys2048", 64, 32, 8, 2048}})
    benchmark::RegisterBenchmark((std::string("decode_attention/bf16/") + a.name).c_str(),
                                 [=](benchmark::State& s) { bm_decode_attn(s, a.rows, a.nh, a.nkv, a.keys); })
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
  for (int64_t mult : {1, 8}) {
    const int64_t n = kRows * kCols * mult;
    const std::string sz = mult == 1 ? "/4096x11008" : "/8x4096x11008";
    for (auto dt : {kc::DType::F32, kc::DType::F16, kc::DType::BF16}) {
      benchmark::RegisterBenchmark((std::string("pack_signs/") + dname(dt) + sz).c_str(),
                                   [=](benchmark::State& s) { bm_pack(s, dt, n); })
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark((std::string("add_packed/") + dname(dt) + sz).c_str(),
                                   [=](benchmark::State& s) { bm_unpack(s, dt, n, true); })
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark((std::string("unpack/") + dname(dt) + sz).c_str(),
                                   [=](benchmark::State& s) { bm_unpack(s, dt, n, false); })
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
    }
    for (int dense : {0, 1, 3})
      benchmark::RegisterBenchmark(("ties3/dense_bf16=" + std::to_string(dense) + sz).c_str(),
                                   [=](benchmark::State& s) { bm_ties(s, dense, n); })
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "bench_kernels: no CUDA device; run it on the GPU machine (scripts/device/kernels_check.sh)\n");
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  benchmark::AddCustomContext("device", prop.name);
  benchmark::AddCustomContext("commit", BITMERGE_GIT_COMMIT);
  benchmark::AddCustomContext("target", "x_copy >= 0.80 (kernel GB/s / cudaMemcpy D2D GB/s of the same traffic)");
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
