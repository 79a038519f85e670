// Task-vector statistics (merging/tv_stats.hpp): hand-computed cases on tiny
// tensors and tiny checkpoints, chunking invariance, a NumPy reference
// (tv_stats_oracle.py, via BITMERGE_TEST_PYTHON), bad input, and the CLI
// (`bitmerge inspect --task-vectors`, via BITMERGE_BIN).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "merging/tv_stats.hpp"
#include "tests/merging/tiny_model.hpp"

using namespace bm;
using namespace bm::merging;

namespace {

torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

// Tiny config: vocab 32, hidden 8, intermediate 16, 2 layers (tiny_model.hpp).
struct Counts {
  int64_t attn, mlp, embed_head, norm, total;
};
Counts counts(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, L = c.num_hidden_layers;
  Counts n{};
  n.attn = L * 4 * H * H;  // q, k, v, o (kv heads == heads)
  n.mlp = L * 3 * H * I;
  n.embed_head = 2 * V * H;
  n.norm = (2 * L + 1) * H;
  n.total = n.attn + n.mlp + n.embed_head + n.norm;
  return n;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bm::Error& e) {
    return e.what();
  }
  return "";
}

std::string run(const std::string& cmd, int* rc) {
  std::string out = "/tmp/bm-tvstats-cli-" + std::to_string(getpid()) + ".txt";
  *rc = std::system((cmd + " >" + out + " 2>&1").c_str());
  std::string text = file_exists(out) ? read_text_file(out) : "";
  std::remove(out.c_str());
  return text;
}

}  // namespace

TEST(TvStats, PairIndexIsABijection) {
  for (int k = 1; k <= 5; ++k) {
    std::vector<int> seen;
    for (int i = 0; i < k; ++i)
      for (int j = i + 1; j < k; ++j) seen.push_back(pair_index(i, j, k));
    for (size_t p = 0; p < seen.size(); ++p) EXPECT_EQ(seen[p], static_cast<int>(p)) << "k=" << k;
  }
}

// base = [1, 2, 2, 4]; d_a = [1, -1, 0, 2]; d_b = [2, 1, 0, -2]; d_c = 0.
// ||base||^2 = 25, ||d_a||^2 = 6, ||d_b||^2 = 9, <d_a, d_b> = 2 - 1 - 4 = -3.
// Both nonzero at 0, 1, 3; signs agree only at 0.
TEST(TvStats, HandComputedFourEntries) {
  auto base = vec({1, 2, 2, 4});
  auto a = base + vec({1, -1, 0, 2});
  auto b = base + vec({2, 1, 0, -2});
  auto c = base.clone();
  TvAccum s = tv_accumulate(base, {a, b, c});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.base_sq, 25.0);
  EXPECT_DOUBLE_EQ(s.rel_norm(0), std::sqrt(6.0) / 5.0);
  EXPECT_DOUBLE_EQ(s.rel_norm(1), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.rel_norm(2), 0.0);
  EXPECT_DOUBLE_EQ(s.cosine(0, 1), -3.0 / std::sqrt(54.0));
  EXPECT_TRUE(std::isnan(s.cosine(0, 2))) << "cosine with a zero task vector is undefined";
  EXPECT_DOUBLE_EQ(s.sign_agree(0, 1), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.both_nonzero_frac(0, 1), 0.75);
  EXPECT_TRUE(std::isnan(s.sign_agree(0, 2))) << "no entry has both deltas nonzero";
  EXPECT_DOUBLE_EQ(s.both_nonzero_frac(1, 2), 0.0);
  EXPECT_DOUBLE_EQ(s.zero_frac(0), 0.25);
  EXPECT_DOUBLE_EQ(s.zero_frac(1), 0.25);
  EXPECT_DOUBLE_EQ(s.zero_frac(2), 1.0);
  EXPECT_DOUBLE_EQ(s.max_abs[0], 2.0);
  EXPECT_DOUBLE_EQ(s.mean_abs(0), 1.0);
  EXPECT_DOUBLE_EQ(s.mean_abs(1), 5.0 / 4.0);
  EXPECT_DOUBLE_EQ(s.rms(1), 1.5);
}

// Identical and opposite task vectors: cosine +-1, agreement 1 / 0.
TEST(TvStats, ParallelAndOpposite) {
  auto base = vec({0.5, -1, 3});
  auto d = vec({0.25, -0.5, 0.125});
  TvAccum s = tv_accumulate(base, {base + d, base + 2 * d, base - d});
  EXPECT_NEAR(s.cosine(0, 1), 1.0, 1e-15);
  EXPECT_NEAR(s.cosine(0, 2), -1.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.sign_agree(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(s.sign_agree(0, 2), 0.0);
  EXPECT_DOUBLE_EQ(s.sign_agree(1, 2), 0.0);
  EXPECT_DOUBLE_EQ(s.rel_norm(1), 2 * s.rel_norm(0));
}

// Sums over parts added together equal the sums over the whole.
TEST(TvStats, AccumulatorsAreAdditive) {
  torch::manual_seed(3);
  auto base = torch::randn({1000}, torch::kFloat64);
  std::vector<torch::Tensor> ex{base + 0.1 * torch::randn({1000}, torch::kFloat64),
                                base + 0.1 * torch::randn({1000}, torch::kFloat64)};
  ex[1].narrow(0, 0, 100).copy_(base.narrow(0, 0, 100));  // exact zeros
  TvAccum whole = tv_accumulate(base, ex);
  TvAccum parts(2);
  for (int64_t off : {0, 337, 700}) {
    int64_t len = (off == 0 ? 337 : off == 337 ? 363 : 300);
    parts.add(tv_accumulate(base.narrow(0, off, len), {ex[0].narrow(0, off, len), ex[1].narrow(0, off, len)}));
  }
  EXPECT_EQ(parts.n, whole.n);
  EXPECT_EQ(parts.zeros, whole.zeros);
  EXPECT_EQ(whole.zeros[1], 100);
  EXPECT_EQ(parts.both_nonzero, whole.both_nonzero);
  EXPECT_EQ(parts.agree, whole.agree);
  EXPECT_EQ(parts.max_abs, whole.max_abs);
  EXPECT_NEAR(parts.cosine(0, 1), whole.cosine(0, 1), 1e-12);
  EXPECT_NEAR(parts.rel_norm(0), whole.rel_norm(0), 1e-12);
  // Independent noise: cosine near 0, sign agreement near 1/2.
  EXPECT_LT(std::fabs(whole.cosine(0, 1)), 0.15);
  EXPECT_NEAR(whole.sign_agree(0, 1), 0.5, 0.1);
}

class TvStatsModels : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("tvstats");
    cfg = test::tiny_config();
    // base = 2 everywhere; a: +0.5 on attention; b: -0.25 on attention, +1 on MLP.
    test::write_tiny_model(dir + "/base", cfg, [](const std::string&, const std::vector<int64_t>& s) {
      return torch::full(s, 2.0);
    });
    test::write_tiny_model(dir + "/a", cfg, [](const std::string& n, const std::vector<int64_t>& s) {
      return torch::full(s, tv_position(n) == "attention" ? 2.5 : 2.0);
    });
    test::write_tiny_model(dir + "/b", cfg, [](const std::string& n, const std::vector<int64_t>& s) {
      auto p = tv_position(n);
      return torch::full(s, p == "attention" ? 1.75 : p == "mlp" ? 3.0 : 2.0);
    });
  }
  void TearDown() override { remove_tree(dir); }
  std::vector<TvExpert> experts() {
    return {{"a", Checkpoint::open(dir + "/a")}, {"b", Checkpoint::open(dir + "/b")}};
  }
  std::string dir;
  ModelConfig cfg;
};

TEST_F(TvStatsModels, HandComputedPerPosition) {
  Counts n = counts(cfg);
  auto r = task_vector_stats(Checkpoint::open(dir + "/base"), experts());
  ASSERT_EQ(r.positions.size(), 5u);  // attention, mlp, embed_head, norm, total
  EXPECT_EQ(r.positions[0].first, "attention");
  EXPECT_EQ(r.positions.back().first, "total");
  const auto& att = r.position("attention");
  const auto& mlp = r.position("mlp");
  const auto& emb = r.position("embed_head");
  const auto& norm = r.position("norm");
  const auto& tot = r.position("total");
  EXPECT_EQ(att.n, n.attn);
  EXPECT_EQ(mlp.n, n.mlp);
  EXPECT_EQ(emb.n, n.embed_head);
  EXPECT_EQ(norm.n, n.norm);
  EXPECT_EQ(tot.n, n.total);
  EXPECT_DOUBLE_EQ(att.rel_norm(0), 0.25);
  EXPECT_DOUBLE_EQ(att.rel_norm(1), 0.125);
  EXPECT_DOUBLE_EQ(att.cosine(0, 1), -1.0);
  EXPECT_DOUBLE_EQ(att.sign_agree(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(att.both_nonzero_frac(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(mlp.rel_norm(0), 0.0);
  EXPECT_DOUBLE_EQ(mlp.rel_norm(1), 0.5);
  EXPECT_DOUBLE_EQ(mlp.zero_frac(0), 1.0);
  EXPECT_TRUE(std::isnan(mlp.cosine(0, 1)));
  EXPECT_TRUE(std::isnan(mlp.sign_agree(0, 1)));
  EXPECT_DOUBLE_EQ(emb.zero_frac(0), 1.0);
  EXPECT_DOUBLE_EQ(emb.zero_frac(1), 1.0);
  // Whole model: ||d_a||^2 = 0.25 n_att, ||d_b||^2 = 0.0625 n_att + n_mlp, <d_a, d_b> = -0.125 n_att.
  const double A = static_cast<double>(n.attn), M = static_cast<double>(n.mlp), N = static_cast<double>(n.total);
  EXPECT_NEAR(tot.rel_norm(0), std::sqrt(0.25 * A / (4 * N)), 1e-15);
  EXPECT_NEAR(tot.rel_norm(1), std::sqrt((0.0625 * A + M) / (4 * N)), 1e-15);
  EXPECT_NEAR(tot.cosine(0, 1), -0.125 * A / std::sqrt(0.25 * A * (0.0625 * A + M)), 1e-15);
  EXPECT_DOUBLE_EQ(tot.zero_frac(0), (N - A) / N);
  EXPECT_DOUBLE_EQ(tot.sign_agree(0, 1), 0.0);
  // Per layer and per role.
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_EQ(r.layers.at(1)[0].second.n, n.attn / 2);
  EXPECT_EQ(r.roles.front().first, "embed");
  // Markdown and JSON carry the same numbers.
  auto md = r.to_markdown();
  EXPECT_NE(md.find("| attention | 512 | 45.25 | 0.25 | 0.125 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| attention | -1.0000 |"), std::string::npos) << md;
  auto j = nlohmann::json::parse(r.to_json());
  EXPECT_DOUBLE_EQ(j["positions"]["attention"]["experts"]["a"]["rel_norm"].get<double>(), 0.25);
  EXPECT_TRUE(j["positions"]["mlp"]["pairs"][0]["cosine"].is_null());
  EXPECT_EQ(j["positions"]["total"]["entries"].get<int64_t>(), n.total);
}

TEST_F(TvStatsModels, ChunkSizeDoesNotChangeResults) {
  TvStatsOptions small;
  small.chunk_elems = 7;  // chunks cross rows and tensor ends
  auto r1 = task_vector_stats(Checkpoint::open(dir + "/base"), experts());
  auto r2 = task_vector_stats(Checkpoint::open(dir + "/base"), experts(), small);
  for (size_t i = 0; i < r1.positions.size(); ++i) {
    const auto &x = r1.positions[i].second, &y = r2.positions[i].second;
    EXPECT_EQ(x.n, y.n);
    EXPECT_EQ(x.zeros, y.zeros);
    EXPECT_EQ(x.agree, y.agree);
    EXPECT_DOUBLE_EQ(x.sq[1], y.sq[1]);  // exact: every partial sum is a multiple of 1/16
  }
}

// Same values stored as bf16 (read as stored) or as fp16 experts of an fp32
// base (mixed dtypes: converted to float64 first): the same numbers.
TEST_F(TvStatsModels, StoredDtypesGiveTheSameNumbers) {
  auto ref = task_vector_stats(Checkpoint::open(dir + "/base"), experts());
  auto same_values = [&](const std::string& from, const std::string& to, DType dt) {
    auto src = Checkpoint::open(dir + "/" + from);
    test::write_tiny_model(dir + "/" + to, cfg,
                           [&](const std::string& n, const std::vector<int64_t>&) { return src->get(n).clone(); }, dt);
  };
  for (auto m : {"base", "a", "b"}) same_values(m, std::string(m) + "16", DType::BF16);
  same_values("a", "a_f16", DType::F16);
  same_values("b", "b_f16", DType::F16);
  auto bf = task_vector_stats(Checkpoint::open(dir + "/base16"),
                              {{"a", Checkpoint::open(dir + "/a16")}, {"b", Checkpoint::open(dir + "/b16")}});
  auto mixed = task_vector_stats(Checkpoint::open(dir + "/base"),
                                 {{"a", Checkpoint::open(dir + "/a_f16")}, {"b", Checkpoint::open(dir + "/b_f16")}});
  ASSERT_EQ(Checkpoint::open(dir + "/a_f16")->info("lm_head.weight").dtype, DType::F16);
  for (auto* r : {&bf, &mixed})
    for (size_t i = 0; i < ref.positions.size(); ++i) {
      const auto &x = ref.positions[i].second, &y = r->positions[i].second;
      EXPECT_EQ(x.n, y.n);
      EXPECT_EQ(x.zeros, y.zeros);
      EXPECT_EQ(x.agree, y.agree);
      EXPECT_EQ(x.both_nonzero, y.both_nonzero);
      EXPECT_EQ(x.sq, y.sq);
      EXPECT_EQ(x.dot, y.dot);
      EXPECT_DOUBLE_EQ(x.base_sq, y.base_sq);
    }
}

TEST_F(TvStatsModels, BadInputNamesFileAndTensor) {
  auto base = Checkpoint::open(dir + "/base");
  auto names = llama_tensor_names(2, false);
  // An expert file (no config.json) with one tensor of another shape / one tensor missing.
  auto write_file = [&](const std::string& path, const std::string& skip, const std::string& reshape) {
    SafetensorsWriter w(path, {{"format", "pt"}});
    std::vector<torch::Tensor> ts;
    std::vector<std::string> ns;
    for (auto& n : names) {
      if (n == skip) continue;
      auto t = base->get(n).clone();
      if (n == reshape) t = t.reshape({-1});
      w.declare(n, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()));
      ts.push_back(t);
      ns.push_back(n);
    }
    for (size_t i = 0; i < ts.size(); ++i) w.write(ns[i], ts[i].data_ptr(), ts[i].numel() * 4);
    w.finish();
  };
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  write_file(dir + "/shape.safetensors", "", q);
  auto msg = message_of([&] { task_vector_stats(base, {{"x", Checkpoint::open(dir + "/shape.safetensors")}}); });
  EXPECT_NE(msg.find(dir + "/shape.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find(q), std::string::npos) << msg;
  EXPECT_NE(msg.find("differs from the base"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;

  write_file(dir + "/missing.safetensors", q, "");
  msg = message_of([&] { task_vector_stats(base, {{"x", Checkpoint::open(dir + "/missing.safetensors")}}); });
  EXPECT_NE(msg.find(q), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing in the expert"), std::string::npos) << msg;

  // A different vocabulary: error unless common_vocab; then the first 32 rows are compared.
  auto big = test::tiny_config(40);
  test::write_tiny_model(dir + "/vocab", big, [](const std::string& n, const std::vector<int64_t>& s) {
    return torch::full(s, tv_position(n) == "embed_head" ? 3.0 : 2.0);
  });
  msg = message_of([&] { task_vector_stats(base, {{"v", Checkpoint::open(dir + "/vocab")}}); });
  EXPECT_NE(msg.find(dir + "/vocab: model.embed_tokens.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("40 rows"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--common-vocab"), std::string::npos) << msg;
  TvStatsOptions common;
  common.common_vocab = true;
  auto r = task_vector_stats(base, {{"v", Checkpoint::open(dir + "/vocab")}}, common);
  EXPECT_EQ(r.position("embed_head").n, 2 * 32 * 8);
  EXPECT_DOUBLE_EQ(r.position("embed_head").rel_norm(0), 0.5);
  EXPECT_EQ(r.notes.size(), 2u);

  // Non-finite weights: the expert's path, the tensor and the index.
  test::write_tiny_model(dir + "/nan", cfg, [&](const std::string& n, const std::vector<int64_t>& s) {
    auto t = torch::full(s, 2.0);
    if (n == q) t.index_put_({1, 3}, std::nan(""));
    return t;
  });
  msg = message_of([&] { task_vector_stats(base, {{"n", Checkpoint::open(dir + "/nan")}}); });
  EXPECT_NE(msg.find(dir + "/nan: " + q), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN at index [1, 3]"), std::string::npos) << msg;

  msg = message_of([&] { task_vector_stats(base, {}); });
  EXPECT_NE(msg.find("--experts"), std::string::npos) << msg;
}

// NumPy reference on a random tiny model with exact zeros and fp16 weights.
TEST(TvStatsOracle, MatchesNumpy) {
  const char* py = std::getenv("BITMERGE_TEST_PYTHON");
  const char* src = std::getenv("BITMERGE_SOURCE_DIR");
  if (!py || !src || !file_exists(py)) GTEST_SKIP() << "BITMERGE_TEST_PYTHON / BITMERGE_SOURCE_DIR not set";
  std::string dir = test::temp_dir("tvstats-oracle");
  auto cfg = test::tiny_config(48, 16, 40, 2);
  auto noisy = [](uint64_t seed, double scale, double keep) {
    return [=](const std::string& n, const std::vector<int64_t>& s) {
      torch::manual_seed(1000 + seed + std::hash<std::string>{}(n) % 1000);
      auto d = scale * torch::randn(s);
      return d * (torch::rand(s) < keep).to(torch::kFloat32);  // exact zeros where dropped
    };
  };
  test::write_tiny_model(dir + "/base", cfg, test::random_tensors(1, 0.02), DType::F16);
  test::write_tiny_model(dir + "/chat", cfg, test::random_tensors(1, 0.02, noisy(2, 1e-3, 0.9)), DType::F16);
  test::write_tiny_model(dir + "/math", cfg, test::random_tensors(1, 0.02, noisy(3, 2e-3, 0.5)), DType::F16);
  test::write_tiny_model(dir + "/code", cfg, test::random_tensors(1, 0.02, noisy(2, 1e-3, 0.9)), DType::F16);
  std::string want_path = dir + "/numpy.json";
  std::string cmd = std::string(py) + " " + src + "/tests/merging/tv_stats_oracle.py " + want_path + " " + dir +
                    "/base chat=" + dir + "/chat math=" + dir + "/math code=" + dir + "/code";
  int rc = 0;
  std::string log = run(cmd, &rc);
  ASSERT_EQ(rc, 0) << log;
  auto want = nlohmann::json::parse(read_text_file(want_path));
  TvStatsOptions opts;
  opts.chunk_elems = 100;
  auto r = task_vector_stats(Checkpoint::open(dir + "/base"),
                             {{"chat", Checkpoint::open(dir + "/chat")},
                              {"math", Checkpoint::open(dir + "/math")},
                              {"code", Checkpoint::open(dir + "/code")}},
                             opts);
  auto got = nlohmann::json::parse(r.to_json())["positions"];
  ASSERT_EQ(got.size(), want.size());
  auto near = [](const nlohmann::json& a, const nlohmann::json& b, const std::string& what) {
    if (b.is_null()) {
      EXPECT_TRUE(a.is_null()) << what;
      return;
    }
    ASSERT_FALSE(a.is_null()) << what;
    double x = a.get<double>(), y = b.get<double>();
    EXPECT_NEAR(x, y, 1e-9 * std::max(1.0, std::fabs(y))) << what;
  };
  int zeros_seen = 0;
  for (auto& [pos, w] : want.items()) {
    ASSERT_TRUE(got.contains(pos)) << pos;
    const auto& g = got[pos];
    EXPECT_EQ(g["entries"].get<int64_t>(), w["entries"].get<int64_t>()) << pos;
    near(g["base_norm"], w["base_norm"], pos + " base_norm");
    for (auto& [name, we] : w["experts"].items())
      for (const char* key : {"rel_norm", "rms", "mean_abs", "max_abs", "zero_frac"})
        near(g["experts"][name][key], we[key], pos + " " + name + " " + key);
    zeros_seen += w["experts"]["math"]["zero_frac"].get<double>() > 0.3;
    ASSERT_EQ(g["pairs"].size(), w["pairs"].size());
    for (size_t p = 0; p < w["pairs"].size(); ++p) {
      EXPECT_EQ(g["pairs"][p]["a"], w["pairs"][p]["a"]);
      EXPECT_EQ(g["pairs"][p]["b"], w["pairs"][p]["b"]);
      for (const char* key : {"cosine", "sign_agree", "both_nonzero_frac"})
        near(g["pairs"][p][key], w["pairs"][p][key], pos + " pair " + std::to_string(p) + " " + key);
    }
  }
  EXPECT_GE(zeros_seen, 3) << "the fixture must exercise exact zeros";
  // chat and code share their noise: cosine 1 on every position with deltas.
  EXPECT_NEAR(got["total"]["pairs"][1]["cosine"].get<double>(), 1.0, 1e-12);
  remove_tree(dir);
}

// The CLI: Markdown on stdout, JSON written, one-line error with exit 2.
TEST_F(TvStatsModels, Cli) {
  const char* bin = std::getenv("BITMERGE_BIN");
  if (!bin || !file_exists(bin)) GTEST_SKIP() << "BITMERGE_BIN not set";
  int rc = 0;
  std::string json = dir + "/stats.json";
  std::string out = run(std::string(bin) + " inspect --task-vectors --base " + dir + "/base --experts a=" + dir +
                            "/a --experts b=" + dir + "/b --json " + json,
                        &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("### Relative norm"), std::string::npos) << out;
  EXPECT_NE(out.find("| attention | -1.0000 |"), std::string::npos) << out;
  auto j = nlohmann::json::parse(read_text_file(json));
  EXPECT_DOUBLE_EQ(j["positions"]["mlp"]["experts"]["b"]["rel_norm"].get<double>(), 0.5);

  // A family file (paths relative to it); --experts picks some by name.
  write_file_atomic(dir + "/fam.toml",
                    "name = \"t\"\narchitecture = \"llama\"\ndtype = \"float32\"\n[base]\npath = \"base\"\n"
                    "[experts.a]\npath = \"a\"\ndomain = \"chat\"\n[experts.b]\npath = \"b\"\ndomain = \"math\"\n");
  out = run(std::string(bin) + " inspect --task-vectors --family " + dir + "/fam.toml --experts b", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("| position | entries | ||theta_pre|| | b |\n"), std::string::npos) << out;
  EXPECT_NE(out.find("| MLP | 768 | 55.43 | 0.5 |"), std::string::npos) << out;
  out = run(std::string(bin) + " inspect --task-vectors --family " + dir + "/fam.toml --experts c", &rc);
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_NE(out.find("--experts c: no such expert in " + dir + "/fam.toml"), std::string::npos) << out;

  // A family NAME is looked up in configs/families even where a directory of that
  // name exists in the working directory (the repository root has mini-nano/).
  ::mkdir((dir + "/mini-nano").c_str(), 0755);
  out = run("cd " + dir + " && BITMERGE_MINI_DIR=" + dir + "/nowhere " + std::string(bin) +
                " inspect --task-vectors --family mini-nano",
            &rc);
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_NE(out.find(dir + "/nowhere/models/base/config.json: checkpoint for mini-nano/base not found"),
            std::string::npos)
      << out;

  // A family NAME is looked up in configs/families even where a directory of that
  // name exists in the working directory (the repository root has mini-nano/).
  ::mkdir((dir + "/mini-nano").c_str(), 0755);
  out = run("cd " + dir + " && BITMERGE_MINI_DIR=" + dir + "/nowhere " + std::string(bin) +
                " inspect --task-vectors --family mini-nano",
            &rc);
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_NE(out.find(dir + "/nowhere/models/base/config.json: checkpoint for mini-nano/base not found"),
            std::string::npos)
      << out;

  auto big = test::tiny_config(40);
  test::write_tiny_model(dir + "/vocab", big, [](const std::string&, const std::vector<int64_t>& s) {
    return torch::full(s, 2.0);
  });
  out = run(std::string(bin) + " inspect --task-vectors --base " + dir + "/base --experts v=" + dir + "/vocab", &rc);
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_NE(out.find("bitmerge: error: " + dir + "/vocab: model.embed_tokens.weight"), std::string::npos) << out;
  out = run(std::string(bin) + " inspect --task-vectors --common-vocab --base " + dir + "/base --experts v=" + dir +
                "/vocab",
            &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("compared the first 32 rows"), std::string::npos) << out;
}
