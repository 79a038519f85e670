// Streaming merge benchmark.
//   bench_merging_stream gen DIR --hidden H --inter I --layers L --vocab V --experts K [--device cuda]
//       writes DIR/base and DIR/e1..eK (bf16, expert = base + 0.01 N(0,1))
//   bench_merging_stream read DIR            time to read every input tensor once (the limit)
//   bench_merging_stream read DIR --threads N  the same with N threads of pread (page-cache bandwidth)
//   bench_merging_stream write DIR           write one output's bytes (ofstream) + fsync
//   bench_merging_stream merge DIR [--method ties] [--device cpu|cuda]
//       TIES merge of all experts into DIR/out; prints seconds, peak RSS (VmHWM)
//       and the ratio merge / read and peak RSS / input bytes.
// Each phase is its own process so that its peak RSS is its own.
#include <fcntl.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"
#include "kernels/upload.hpp"
#include "merging/api.hpp"

using namespace bm;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static long vm_hwm_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

static std::string arg(int argc, char** argv, const std::string& key, const std::string& def) {
  for (int i = 3; i + 1 < argc; ++i)
    if (key == argv[i]) return argv[i + 1];
  return def;
}

static ModelConfig config(int argc, char** argv) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = std::stoll(arg(argc, argv, "--hidden", "4096"));
  c.intermediate_size = std::stoll(arg(argc, argv, "--inter", "11008"));
  c.num_hidden_layers = std::stoll(arg(argc, argv, "--layers", "8"));
  c.vocab_size = std::stoll(arg(argc, argv, "--vocab", "32000"));
  c.num_attention_heads = c.hidden_size / 128;
  c.num_key_value_heads = c.num_attention_heads;
  c.head_dim = 128;
  c.torch_dtype = "bfloat16";
  return c;
}

static void gen(const std::string& dir, const ModelConfig& c, int experts, const std::string& device) {
  torch::Device dev(device == "cuda" ? torch::kCUDA : torch::kCPU);
  auto names = llama_tensor_names(static_cast<int>(c.num_hidden_layers), false);
  for (int k = 0; k <= experts; ++k) {
    std::string d = dir + (k == 0 ? "/base" : "/e" + std::to_string(k));
    make_dirs(d);
    write_file_atomic(d + "/config.json", c.to_json_text());
    SafetensorsWriter w(d + "/model.safetensors", {{"format", "pt"}});
    for (auto& n : names) {
      std::vector<int64_t> s;
      Checkpoint::expected_shape(c, n, &s);
      w.declare(n, DType::BF16, s);
    }
    for (auto& n : names) {
      std::vector<int64_t> s;
      Checkpoint::expected_shape(c, n, &s);
      torch::manual_seed(std::hash<std::string>{}(n));  // base: same for every model
      auto t = torch::randn(s, torch::TensorOptions().device(dev)) * 0.02;
      if (k > 0) {
        torch::manual_seed(std::hash<std::string>{}(n) + 7919 * k);
        t = t + 0.001 * torch::randn(s, torch::TensorOptions().device(dev));
      }
      auto b = t.to(torch::kBFloat16).cpu().contiguous();
      w.write(n, b.data_ptr(), b.numel() * 2);
    }
    w.finish();
    std::cout << "wrote " << d << std::endl;
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_merging_stream gen|read|merge DIR [options]\n";
    return 2;
  }
  std::string cmd = argv[1], dir = argv[2];
  try {
    if (cmd == "gen") {
      gen(dir, config(argc, argv), std::stoi(arg(argc, argv, "--experts", "3")), arg(argc, argv, "--device", "cpu"));
      return 0;
    }
    std::vector<std::string> inputs{dir + "/base"};
    for (int k = 1; file_exists(dir + "/e" + std::to_string(k) + "/config.json"); ++k)
      inputs.push_back(dir + "/e" + std::to_string(k));
    uint64_t input_bytes = 0;
    for (auto& i : inputs) input_bytes += Checkpoint::open(i)->tensor_bytes();
    int threads = std::stoi(arg(argc, argv, "--threads", "1"));
    if (cmd == "read" && threads > 1) {
      // Every input byte read once by `threads` threads with pread into
      // private 8 MiB buffers: what the page cache can deliver in parallel.
      struct Job {
        std::string path;
        uint64_t off, len;
      };
      std::vector<Job> jobs;
      for (auto& i : inputs) {
        auto c = Checkpoint::open(i);
        for (auto& f : c->files()) {
          uint64_t size = std::filesystem::file_size(f);
          for (uint64_t off = 0; off < size; off += 8 << 20) jobs.push_back({f, off, std::min<uint64_t>(8 << 20, size - off)});
        }
      }
      std::atomic<size_t> next{0};
      std::atomic<uint64_t> total{0};
      auto t0 = Clock::now();
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
          std::vector<char> buf(8 << 20);
          std::map<std::string, int> fds;
          for (size_t j; (j = next++) < jobs.size();) {
            auto& jb = jobs[j];
            auto it = fds.find(jb.path);
            if (it == fds.end()) it = fds.emplace(jb.path, ::open(jb.path.c_str(), O_RDONLY)).first;
            kernels::pread_all(it->second, buf.data(), static_cast<int64_t>(jb.len), static_cast<int64_t>(jb.off), jb.path);
            total += jb.len;
          }
          for (auto& [p, fd] : fds) ::close(fd);
        });
      for (auto& t : ts) t.join();
      double s = since(t0);
      std::cout << "read_parallel_s " << s << " threads " << threads << " file_bytes " << total << " GBps "
                << total / s / 1e9 << std::endl;
      return 0;
    }
    if (cmd == "write") {
      // Writing one output's bytes (= the base's) through an ofstream, then fsync: the write limit.
      uint64_t bytes = Checkpoint::open(inputs[0])->tensor_bytes();
      std::vector<char> buf(256 << 20, 1);
      std::string path = dir + "/write-test.bin";
      auto t0 = Clock::now();
      {
        std::ofstream o(path, std::ios::binary | std::ios::trunc);
        for (uint64_t done = 0; done < bytes; done += buf.size())
          o.write(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), bytes - done)));
      }
      double ws = since(t0);
      auto t1 = Clock::now();
      int fd = ::open(path.c_str(), O_RDONLY);
      ::fsync(fd);
      ::close(fd);
      double fs = since(t1);
      std::remove(path.c_str());
      std::cout << "write_s " << ws << " fsync_s " << fs << " bytes " << bytes << " GBps " << bytes / (ws + fs) / 1e9
                << std::endl;
      // The same bytes through SafetensorsWriter (write-behind every 64 MiB, fsync in finish()).
      std::string spath = dir + "/write-test.safetensors";
      auto t2 = Clock::now();
      {
        SafetensorsWriter w(spath);
        int64_t per = static_cast<int64_t>(buf.size());
        int64_t n = static_cast<int64_t>((bytes + buf.size() - 1) / buf.size());
        for (int64_t i = 0; i < n; ++i)
          w.declare("t" + std::to_string(i), DType::U8, {std::min<int64_t>(per, static_cast<int64_t>(bytes) - i * per)});
        double wrote = 0;
        for (int64_t i = 0; i < n; ++i) {
          int64_t len = std::min<int64_t>(per, static_cast<int64_t>(bytes) - i * per);
          w.write("t" + std::to_string(i), buf.data(), static_cast<size_t>(len));
          wrote += static_cast<double>(len);
        }
        double ws2 = since(t2);
        auto t3 = Clock::now();
        w.finish();
        std::cout << "safetensors_write_s " << ws2 << " finish_fsync_s " << since(t3) << " bytes " << wrote
                  << " GBps " << wrote / since(t2) / 1e9 << std::endl;
      }
      std::remove(spath.c_str());
      return 0;
    }
    if (cmd == "read") {
      // The limit: touch every byte of every input once (what any merge must do).
      auto t0 = Clock::now();
      double sink = 0;
      for (auto& i : inputs) {
        auto c = Checkpoint::open(i);
        for (auto& n : c->names()) {
          auto t = c->get(n).clone();  // one copy of every byte: memory/page-cache bandwidth
          sink += static_cast<double>(static_cast<const uint8_t*>(t.data_ptr())[0]);
        }
      }
      double s = since(t0);
      std::cout << "read_s " << s << " input_bytes " << input_bytes << " GBps " << input_bytes / s / 1e9
                << " peak_rss_kb " << vm_hwm_kb() << " (sink " << sink << ")" << std::endl;
      return 0;
    }
    if (cmd == "merge") {
      merging::MergeSpec spec;
      spec.method = arg(argc, argv, "--method", "ties");
      spec.base = inputs[0];
      for (size_t k = 1; k < inputs.size(); ++k) spec.experts.push_back({"e" + std::to_string(k), inputs[k], std::nullopt});
      if (spec.method == "onebit" || spec.method == "routing") spec.route = "e1";
      if (spec.method == "onebit")
        for (auto& e : spec.experts) e.compress = Position::Attention;
      spec.params = {};
      if (spec.method == "ties") spec.params["density"] = "0.5";
      spec.device = arg(argc, argv, "--device", "cpu");
      spec.output = dir + "/out-" + spec.method;
      auto t0 = Clock::now();
      merging::merge_models(spec);
      double s = since(t0);
      long rss = vm_hwm_kb();
      double read_s = std::stod(arg(argc, argv, "--read-s", "0"));
      std::cout << "merge_s " << s << " method " << spec.method << " device " << spec.device << " input_bytes "
                << input_bytes << " peak_rss_kb " << rss << " rss_over_inputs "
                << static_cast<double>(rss) * 1024.0 / static_cast<double>(input_bytes);
      if (read_s > 0) std::cout << " merge_over_read " << s / read_s << " (target <= 1.5)";
      std::cout << std::endl;
      bm::remove_tree(spec.output);
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_merging_stream: " << e.what() << std::endl;
    return 1;
  }
  std::cerr << "unknown command " << cmd << "\n";
  return 2;
}
