// Streaming merge: row-chunked merges equal whole-tensor merges bit for bit
// (TIES cuts with ties at the threshold, DARE masks, 1-bit, vocab), and the
// peak RSS growth of a CPU TIES merge of a ~0.5 GB synthetic checkpoint stays
// below 0.6 x the inputs' bytes.
#include <gtest/gtest.h>
#include <malloc.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "harness/core/fileio.hpp"
#include "merging/api.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;
using namespace bm::test;

namespace {

std::map<std::string, torch::Tensor> merge_with_chunk(const MergeSpec& spec, const char* chunk_bytes) {
  if (chunk_bytes)
    setenv("BITMERGE_MERGE_CHUNK_BYTES", chunk_bytes, 1);
  else
    unsetenv("BITMERGE_MERGE_CHUNK_BYTES");
  auto out = merge_in_memory(spec);
  unsetenv("BITMERGE_MERGE_CHUNK_BYTES");
  return out;
}

long status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  return -1;
}

}  // namespace

TEST(StreamMerge, ChunkedEqualsWhole) {
  auto dir = temp_dir("chunked");
  auto c = tiny_config(/*vocab=*/40, /*hidden=*/8, /*inter=*/16, /*layers=*/1);
  // Quantized deltas: many equal |delta| values, so TIES cuts fall on ties
  // that must be broken in index order across chunks.
  auto quant = [](uint64_t seed) {
    return [seed](const std::string& n, const std::vector<int64_t>& s) {
      torch::manual_seed(seed + std::hash<std::string>{}(n) % 1000);
      return torch::randint(-3, 4, s).to(torch::kFloat32) * 0.25;
    };
  };
  // Base on a 1/64 grid: expert - base is exact, so |delta| ties are exact.
  MakeTensor qbase = [](const std::string& n, const std::vector<int64_t>& s) {
    torch::manual_seed(1 + std::hash<std::string>{}(n) % 1000);
    return (torch::randn(s) * 64).round() / 64;
  };
  auto on_base = [&](uint64_t seed) -> MakeTensor {
    auto q = quant(seed);
    return [=](const std::string& n, const std::vector<int64_t>& s) { return qbase(n, s) + q(n, s); };
  };
  write_tiny_model(dir + "/base", c, qbase);
  write_tiny_model(dir + "/chat", c, on_base(11));
  write_tiny_model(dir + "/math", c, on_base(12));
  write_tiny_model(dir + "/code", c, on_base(13));
  struct Case {
    std::string method, route;
    std::map<std::string, std::string> params;
  };
  std::vector<Case> cases = {
      {"ties", "", {{"density", "0.3"}}},
      {"ties", "", {{"density", "0.5"}, {"math.density", "0.2"}}},
      {"ties", "", {{"density", "0.4"}, {"trim", "global"}}},
      {"dare", "", {{"density", "0.5"}, {"seed", "7"}}},
      {"dare_ties", "", {{"density", "0.3"}, {"seed", "3"}}},
      {"task_arithmetic", "", {{"lambda", "0.7"}}},
      {"average", "", {}},
      {"onebit", "math", {{"density", "0.5"}}},
  };
  int chunked_tensors = 0;
  for (auto& cs : cases) {
    MergeSpec spec;
    spec.method = cs.method;
    spec.base = dir + "/base";
    spec.experts = {{"chat", dir + "/chat", std::nullopt}, {"math", dir + "/math", std::nullopt},
                    {"code", dir + "/code", std::nullopt}};
    spec.route = cs.route;
    spec.params = cs.params;
    auto whole = merge_with_chunk(spec, nullptr);
    // 96 bytes = 3 rows of 8 fp32: embed/lm_head (40 rows) and the projections
    // (8 or 16 rows) of uncompressed experts are merged in row chunks.
    auto chunked = merge_with_chunk(spec, "96");
    ASSERT_EQ(whole.size(), chunked.size());
    for (auto& [n, t] : whole) {
      ASSERT_TRUE(chunked.count(n)) << n;
      EXPECT_TRUE(torch::equal(t, chunked[n])) << cs.method << " " << n;
      if (t.dim() > 0 && t.size(0) > 3 && t.numel() * 4 > 96) ++chunked_tensors;
    }
  }
  EXPECT_GT(chunked_tensors, 0);
  // A TIES cut keeps exactly floor(density * numel) entries per tensor even
  // when the cut falls on ties (embed: 40x8, density 0.3 -> 96 per expert).
  {
    MergeSpec spec;
    spec.method = "ties";
    spec.base = dir + "/base";
    spec.experts = {{"chat", dir + "/chat", std::nullopt}};
    spec.params = {{"density", "0.3"}};
    auto out = merge_with_chunk(spec, "96");
    auto base = Checkpoint::open(dir + "/base")->get("model.embed_tokens.weight").to(torch::kFloat32);
    auto kept = (out["model.embed_tokens.weight"] != base).sum().item<int64_t>();
    EXPECT_EQ(kept, 96);
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST(StreamMerge, PeakRssWellBelowInputs) {
  auto dir = temp_dir("rss");
  // ~124 MB of bf16 per model (embed/lm_head 24000x1024 dominate), base + 3 experts.
  auto c = tiny_config(/*vocab=*/24000, /*hidden=*/1024, /*inter=*/2816, /*layers=*/1);
  c.num_attention_heads = 8;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  int64_t input_bytes = 0;
  for (int k = 0; k <= 3; ++k) {
    std::string d = dir + (k == 0 ? "/base" : "/e" + std::to_string(k));
    write_tiny_model(d, c, random_tensors(5, 0.02, k == 0 ? MakeTensor() : random_tensors(100 + k, 0.001)),
                     DType::BF16);
    input_bytes += static_cast<int64_t>(std::filesystem::file_size(d + "/model.safetensors"));
  }
  ASSERT_GT(input_bytes, int64_t(400) << 20);
  malloc_trim(0);
  // Reset the high-water mark so that it measures the merge alone.
  {
    std::ofstream cr("/proc/self/clear_refs");
    cr << "5";
    ASSERT_TRUE(static_cast<bool>(cr)) << "cannot reset VmHWM via /proc/self/clear_refs";
  }
  long before_kb = status_kb("VmRSS");
  ASSERT_GT(before_kb, 0);
  MergeSpec spec;
  spec.method = "ties";
  spec.base = dir + "/base";
  spec.output = dir + "/out";
  spec.experts = {{"e1", dir + "/e1", std::nullopt}, {"e2", dir + "/e2", std::nullopt},
                  {"e3", dir + "/e3", std::nullopt}};
  spec.params = {{"density", "0.5"}};
  merge_models(spec);
  long hwm_kb = status_kb("VmHWM");
  double growth = static_cast<double>(hwm_kb - before_kb) * 1024.0;
  double ratio = growth / static_cast<double>(input_bytes);
  std::cout << "stream merge: input_bytes " << input_bytes << " rss_before_kb " << before_kb << " peak_rss_kb "
            << hwm_kb << " growth/input " << ratio << std::endl;
  EXPECT_LT(ratio, 0.6);
  EXPECT_TRUE(file_exists(dir + "/out/model.safetensors") || file_exists(dir + "/out/model.safetensors.index.json"));
  std::system(("rm -rf " + dir).c_str());
}
