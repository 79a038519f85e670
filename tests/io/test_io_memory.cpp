// Opening a ~1 GiB checkpoint and touching one tensor must not read the file
// into RAM: peak RSS growth (VmHWM, reset through /proc/self/clear_refs) stays
// far below the file size. Runs in its own process so nothing else skews it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/checkpoint.hpp"
#include "tests/io/io_test_util.hpp"

namespace bm {
namespace {

int64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  return -1;
}

bool reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.close();
  return static_cast<bool>(f);
}

constexpr int kTensors = 16;
constexpr int64_t kRows = 4096, kCols = 4096;  // 64 MiB of fp32 each, 1 GiB in all
constexpr int64_t kMiB = 1024;                 // in KiB

// Streams the file in 1 MiB chunks; tensor i holds the value i everywhere.
void write_big(const std::string& path) {
  SafetensorsWriter w(path, {{"format", "pt"}});
  for (int i = 0; i < kTensors; ++i) w.declare("layer." + std::to_string(i) + ".weight", DType::F32, {kRows, kCols});
  std::vector<float> chunk(256 * 1024);
  const size_t per_tensor = kRows * kCols * sizeof(float);
  for (int i = 0; i < kTensors; ++i) {
    std::fill(chunk.begin(), chunk.end(), static_cast<float>(i));
    for (size_t done = 0; done < per_tensor; done += chunk.size() * sizeof(float))
      w.write("layer." + std::to_string(i) + ".weight", chunk.data(), chunk.size() * sizeof(float));
  }
  w.finish();
}

TEST(Memory, OneGigabyteFileTouchOneTensor) {
  ASSERT_GT(status_kib("VmHWM:"), 0) << "/proc/self/status has no VmHWM";
  auto dir = iotest::temp_dir("mem");
  write_big(dir + "/model.safetensors");
  const uint64_t file_kib = 1ull * kTensors * kRows * kCols * 4 / 1024;
  // Warm up torch (thread pool, allocator) so its one-time cost is not counted.
  EXPECT_EQ(torch::ones({1 << 20}).sum().item<double>(), 1 << 20);
  ASSERT_TRUE(reset_peak()) << "cannot reset VmHWM";
  const int64_t rss0 = status_kib("VmRSS:");
  const int64_t hwm0 = status_kib("VmHWM:");
  ASSERT_LE(hwm0, rss0 + 4 * kMiB) << "VmHWM was not reset";
  {
    auto ck = Checkpoint::open(dir);
    EXPECT_EQ(ck->names().size(), static_cast<size_t>(kTensors));
    EXPECT_EQ(ck->tensor_bytes(), file_kib * 1024);
    EXPECT_LT(status_kib("VmHWM:") - rss0, 16 * kMiB) << "open() must not touch tensor data";
    torch::Tensor t = ck->get("layer.7.weight");
    EXPECT_EQ(t.sum().item<double>(), 7.0 * kRows * kCols);  // reads all 64 MiB of it
    const int64_t after_touch = status_kib("VmHWM:") - rss0;
    std::cout << "peak RSS growth after touching one 64 MiB tensor: " << after_touch / kMiB << " MiB\n";
    EXPECT_LT(after_touch, 100 * kMiB) << "touching one tensor must map only that tensor";
    // The fingerprint streams the files through sha256 (read(), not the
    // mapping): the whole file is read but none of it stays resident.
    EXPECT_EQ(ck->fingerprint().size(), 64u);
  }
  const int64_t growth = status_kib("VmHWM:") - rss0;
  std::cout << "file " << file_kib / kMiB << " MiB, peak RSS growth with fingerprint " << growth / kMiB << " MiB\n";
  EXPECT_LT(growth * 4, static_cast<int64_t>(file_kib)) << "opening a 1 GiB checkpoint must not read it into RAM";
}

// The same for a torch.save .bin (written by the venv's torch, when available):
// records are mapped, not read.
TEST(Memory, OneGigabyteTorchBinTouchOneTensor) {
  auto py = iotest::test_python();
  if (py.empty()) GTEST_SKIP() << "BITMERGE_TEST_PYTHON not set";
  auto dir = iotest::temp_dir("membin");
  std::string log;
  int rc = iotest::run("'" + py + "' -c \"import torch; torch.save({f'layer.{i}.weight': torch.full((" +
                           std::to_string(kRows) + ", " + std::to_string(kCols) + "), float(i)) for i in range(" +
                           std::to_string(kTensors) + ")}, '" + dir + "/pytorch_model.bin')\"",
                       &log);
  ASSERT_EQ(rc, 0) << log;
  ASSERT_TRUE(reset_peak());
  const int64_t rss0 = status_kib("VmRSS:");
  {
    auto ck = Checkpoint::open(dir);
    EXPECT_EQ(ck->names().size(), static_cast<size_t>(kTensors));
    EXPECT_EQ(ck->get("layer.9.weight").sum().item<double>(), 9.0 * kRows * kCols);
  }
  const int64_t growth = status_kib("VmHWM:") - rss0;
  std::cout << "torch .bin: peak RSS growth " << growth / kMiB << " MiB for a 1024 MiB file\n";
  EXPECT_LT(growth, 160 * kMiB) << "opening a 1 GiB .bin must not read it into RAM";
}

}  // namespace
}  // namespace bm
