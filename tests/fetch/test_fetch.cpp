// Downloads against a local server (tests/fetch/hub_server.py): sha256
// verification, resume after an interruption, HTTP errors, the bearer token,
// the benchmark data table and the HF hub checkpoint fetch.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/fetch/fetch.hpp"

namespace {

std::string env(const char* n) {
  const char* v = getenv(n);
  return v ? v : "";
}

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_all(const std::string& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f << data;
}

int64_t fsize(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 ? st.st_size : -1;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g() & 0xFF);
  return s;
}

std::string table_sha(const std::string& path) {
  for (auto& f : bm::data_files())
    if (f.path == path) return f.sha256;
  return "";
}

class FetchTest : public ::testing::Test {
 protected:
  static std::string tmp_, data_, hub_, log_, base_;
  static pid_t server_;

  static void SetUpTestSuite() {
    data_ = env("BITMERGE_DATA_DIR");
    char templ[] = "/tmp/bm-fetch-test-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    tmp_ = templ;
    hub_ = tmp_ + "/hub";
    log_ = tmp_ + "/requests.jsonl";
    // A small hub: a sharded safetensors model, a .bin-only model, a gated
    // repo, a repo without listing metadata, and one whose CDN corrupts files.
    auto repo = [&](const std::string& id, const std::map<std::string, std::string>& files) {
      for (auto& [name, data] : files) {
        std::string p = hub_ + "/" + id + "/" + name;
        bm::make_dirs(p.substr(0, p.find_last_of('/')));
        write_all(p, data);
      }
    };
    std::string tok = read_all(data_ + "/tokenizers/llama2/tokenizer.model");
    std::map<std::string, std::string> tiny = {
        {"config.json", "{\"model_type\": \"llama\", \"hidden_size\": 64}\n"},
        {"tokenizer.model", tok},
        {"tokenizer_config.json", "{\"add_bos_token\": true}\n"},
        {"model-00001-of-00002.safetensors", random_bytes(3 << 20, 1)},
        {"model-00002-of-00002.safetensors", random_bytes(1 << 20, 2)},
        {"model.safetensors.index.json", "{\"weight_map\": {}}\n"},
        {"consolidated.safetensors", random_bytes(1000, 3)},
        {"README.md", "# tiny\n"},
        {"optimizer.pt", random_bytes(1000, 4)},
        {"original/params.json", "{}\n"}};
    repo("acme/tiny-llama", tiny);
    repo("acme/gated-llama", {{"config.json", "{\"gated\": true}\n"}, {"model.safetensors", random_bytes(5000, 5)}});
    repo("acme/nometa-model", {{"config.json", "{\"nometa\": 1}\n"}, {"model.safetensors", random_bytes(7000, 6)}});
    repo("acme/nometa-badcdn", {{"config.json", "{}\n"}, {"model.safetensors", random_bytes(7000, 7)}});
    std::string py = env("BITMERGE_TEST_PYTHON");
    std::string script = env("BITMERGE_SOURCE_DIR") + "/tests/fetch/hub_server.py";
    std::string port_file = tmp_ + "/port";
    server_ = fork();
    ASSERT_GE(server_, 0);
    if (server_ == 0) {
      execl(py.c_str(), py.c_str(), script.c_str(), "--data-root", data_.c_str(), "--hub-root", hub_.c_str(),
            "--port-file", port_file.c_str(), "--log", log_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300 && !bm::file_exists(port_file); ++i) usleep(50000);
    ASSERT_TRUE(bm::file_exists(port_file)) << "hub_server.py did not start (" << py << " " << script << ")";
    base_ = "http://127.0.0.1:" + read_all(port_file);
  }

  static void TearDownTestSuite() {
    if (server_ > 0) {
      kill(server_, SIGTERM);
      int st;
      waitpid(server_, &st, 0);
    }
    if (!tmp_.empty()) std::system(("rm -rf '" + tmp_ + "'").c_str());
  }

  void SetUp() override {
    ASSERT_FALSE(base_.empty());
    write_all(log_, "");  // fresh request log per test
    out_ = tmp_ + "/out-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    bm::make_dirs(out_);
  }

  // Logged requests whose path contains `needle`.
  std::vector<nlohmann::json> requests(const std::string& needle) {
    std::vector<nlohmann::json> out;
    std::istringstream in(read_all(log_));
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        auto j = nlohmann::json::parse(line);
        if (j["path"].get<std::string>().find(needle) != std::string::npos) out.push_back(j);
      }
    return out;
  }

  static bm::DownloadOptions quick() {
    bm::DownloadOptions o;
    o.retry_delay_s = 0.05;
    o.progress = false;
    return o;
  }

  std::string out_;
};
std::string FetchTest::tmp_, FetchTest::data_, FetchTest::hub_, FetchTest::log_, FetchTest::base_;
pid_t FetchTest::server_ = -1;

TEST_F(FetchTest, DownloadVerifiesAndPlacesTheFile) {
  auto o = quick();
  o.expected_sha256 = table_sha("humaneval/HumanEval.jsonl.gz");
  ASSERT_EQ(o.expected_sha256.size(), 64u);
  std::string dest = out_ + "/sub/HumanEval.jsonl.gz";
  auto r = bm::download_file(base_ + "/data/humaneval/HumanEval.jsonl.gz", dest, o);
  EXPECT_EQ(r.sha256, o.expected_sha256);
  EXPECT_EQ(bm::sha256_file(dest), o.expected_sha256);
  EXPECT_EQ(r.bytes, fsize(data_ + "/humaneval/HumanEval.jsonl.gz"));
  EXPECT_FALSE(r.already_present);
  EXPECT_FALSE(bm::file_exists(dest + ".part"));
  // Second call: verified in place, no request made.
  write_all(log_, "");
  auto again = bm::download_file(base_ + "/data/humaneval/HumanEval.jsonl.gz", dest, o);
  EXPECT_TRUE(again.already_present);
  EXPECT_TRUE(requests("HumanEval").empty());
  EXPECT_FALSE(bm::file_exists(dest + ".part"));
}

TEST_F(FetchTest, CorruptFileIsRejectedAndNotKept) {
  auto o = quick();
  o.expected_sha256 = table_sha("gsm8k/test.jsonl");
  std::string dest = out_ + "/test.jsonl";
  try {
    bm::download_file(base_ + "/corrupt/data/gsm8k/test.jsonl", dest, o);
    FAIL() << "a corrupted download was accepted";
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("sha256"), std::string::npos) << m;
    EXPECT_NE(m.find(o.expected_sha256), std::string::npos) << m;
    EXPECT_NE(m.find("/corrupt/data/gsm8k/test.jsonl"), std::string::npos) << m;
  }
  EXPECT_FALSE(bm::file_exists(dest));
  EXPECT_FALSE(bm::file_exists(dest + ".part"));
  // An existing final file that does not verify is replaced by a good download.
  write_all(dest, "stale content");
  auto r = bm::download_file(base_ + "/data/gsm8k/test.jsonl", dest, o);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(bm::sha256_file(dest), o.expected_sha256);
}

TEST_F(FetchTest, ResumesAnInterruptedTransfer) {
  auto o = quick();
  o.expected_sha256 = table_sha("gsm8k/test.jsonl");
  o.retries = 0;
  std::string dest = out_ + "/test.jsonl";
  const std::string url = base_ + "/cut/20000/data/gsm8k/test.jsonl";
  EXPECT_THROW(bm::download_file(url, dest, o), bm::Error);
  EXPECT_FALSE(bm::file_exists(dest)) << "a partial file appeared under the final name";
  EXPECT_EQ(fsize(dest + ".part"), 20000);
  // Run again: one Range request from byte 20000.
  auto r = bm::download_file(url, dest, o);
  EXPECT_EQ(r.resumed_from, 20000);
  EXPECT_EQ(bm::sha256_file(dest), o.expected_sha256);
  EXPECT_FALSE(bm::file_exists(dest + ".part"));
  auto reqs = requests("/cut/20000/data/gsm8k/test.jsonl");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[0]["range"].is_null());
  EXPECT_EQ(reqs[1]["range"], "bytes=20000-");

  // Within one call: the broken transfer is retried with a Range request.
  std::string dest2 = out_ + "/test2.jsonl";
  o.retries = 2;
  write_all(log_, "");
  auto r2 = bm::download_file(base_ + "/cut/5000/data/gsm8k/test.jsonl", dest2, o);
  EXPECT_EQ(bm::sha256_file(dest2), o.expected_sha256);
  reqs = requests("/cut/5000/");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1]["range"], "bytes=5000-");
}

TEST_F(FetchTest, ServerIgnoringRangeRestartsFromScratch) {
  auto o = quick();
  o.expected_sha256 = table_sha("mbpp/mbpp.jsonl");
  std::string dest = out_ + "/mbpp.jsonl";
  write_all(dest + ".part", std::string(1000, 'z'));
  auto r = bm::download_file(base_ + "/norange/data/mbpp/mbpp.jsonl", dest, o);
  EXPECT_EQ(r.resumed_from, 1000);
  EXPECT_EQ(bm::sha256_file(dest), o.expected_sha256);
  // A kept part that is not a prefix of the file: the resumed result does not
  // verify, so it is fetched again from the start (once).
  std::string dest2 = out_ + "/mbpp2.jsonl";
  write_all(dest2 + ".part", std::string(1000, 'z'));
  write_all(log_, "");
  bm::download_file(base_ + "/data/mbpp/mbpp.jsonl", dest2, o);
  EXPECT_EQ(bm::sha256_file(dest2), o.expected_sha256);
  auto reqs = requests("/data/mbpp/mbpp.jsonl");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["range"], "bytes=1000-");
  EXPECT_TRUE(reqs[1]["range"].is_null());
}

TEST_F(FetchTest, Http404NamesTheUrlAndWhatToDo) {
  std::string url = base_ + "/data/no/such/file.jsonl";
  try {
    bm::download_file(url, out_ + "/x.jsonl", quick());
    FAIL() << "expected bm::Error";
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(url), std::string::npos) << m;
    EXPECT_NE(m.find("HTTP 404"), std::string::npos) << m;
    EXPECT_NE(m.find("not found"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_FALSE(bm::file_exists(out_ + "/x.jsonl"));
  EXPECT_FALSE(bm::file_exists(out_ + "/x.jsonl.part"));  // no empty leftovers
  // Unreachable server: a clear transfer error, not a crash.
  auto o = quick();
  o.retries = 1;
  try {
    bm::download_file("http://127.0.0.1:1/file", out_ + "/y", o);
    FAIL() << "expected bm::Error";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:1/file"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(bm::file_exists(out_ + "/y"));
  EXPECT_FALSE(bm::file_exists(out_ + "/y.part"));
}

TEST_F(FetchTest, DataTableMatchesSha256Sums) {
  std::istringstream in(read_all(data_ + "/SHA256SUMS"));
  std::map<std::string, std::string> sums;
  std::string sha, path;
  while (in >> sha >> path) sums[path] = sha;
  ASSERT_GT(sums.size(), 100u);
  std::set<std::string> seen;
  for (auto& f : bm::data_files()) {
    ASSERT_TRUE(sums.count(f.path)) << f.path;
    EXPECT_EQ(sums[f.path], f.sha256) << f.path;
    EXPECT_EQ(f.path.substr(0, f.path.find('/')), f.task == "tokenizers" ? "tokenizers" : f.task);
    seen.insert(f.path);
    bool derived = f.path.rfind("hellaswag/", 0) == 0 || f.path.rfind("math/MATH_test", 0) == 0;
    if (derived) {
      EXPECT_TRUE(f.url.empty()) << f.path;
    } else {
      EXPECT_EQ(f.url.rfind("https://raw.githubusercontent.com/", 0), 0u) << f.url;
      // pinned to a 40-hex commit
      auto parts = f.url.substr(34);
      auto c1 = parts.find('/'), c2 = parts.find('/', c1 + 1), c3 = parts.find('/', c2 + 1);
      EXPECT_EQ(parts.substr(c2 + 1, c3 - c2 - 1).size(), 40u) << f.url;
    }
  }
  EXPECT_EQ(seen.size(), sums.size());
  auto tasks = bm::data_task_names();
  for (const char* t : {"mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "humaneval", "mbpp", "tokenizers"})
    EXPECT_NE(std::find(tasks.begin(), tasks.end(), t), tasks.end()) << t;
}

TEST_F(FetchTest, DataFetchFromMirror) {
  bm::DataFetchOptions o;
  o.mirror = base_ + "/data/";
  o.dest = out_ + "/data";
  o.download = quick();
  auto rs = bm::fetch_data({"humaneval", "truthfulqa", "hellaswag", "math"}, o);
  size_t expected = 0;
  for (auto& f : bm::data_files())
    if (f.task == "humaneval" || f.task == "truthfulqa" || f.task == "hellaswag" || f.task == "math") {
      ++expected;
      EXPECT_EQ(bm::sha256_file(o.dest + "/" + f.path), f.sha256) << f.path;
      EXPECT_FALSE(bm::file_exists(o.dest + "/" + f.path + ".part"));
    }
  EXPECT_EQ(rs.size(), expected);
  write_all(log_, "");
  auto again = bm::fetch_data({"humaneval", "truthfulqa"}, o);
  for (auto& r : again) EXPECT_TRUE(r.already_present) << r.path;
  EXPECT_TRUE(requests("/data/").empty());
  // Unknown task, and derived files without a mirror: clear errors, nothing downloaded.
  try {
    bm::fetch_data({"gsm8kk"}, o);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("gsm8k"), std::string::npos) << e.what();
  }
  // A bad mirror: every file is tried, the error names them, nothing is kept.
  bm::DataFetchOptions bad = o;
  bad.mirror = base_ + "/corrupt/data";
  bad.dest = out_ + "/data-bad";
  try {
    bm::fetch_data({"mbpp"}, bad);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mbpp/mbpp.jsonl, mbpp/sanitized-mbpp.json"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(bm::file_exists(bad.dest + "/mbpp/mbpp.jsonl"));
  EXPECT_FALSE(bm::file_exists(bad.dest + "/mbpp/sanitized-mbpp.json"));
  bm::DataFetchOptions no_mirror = o;
  no_mirror.mirror.clear();
  no_mirror.dest = out_ + "/data2";
  try {
    bm::fetch_data({"hellaswag"}, no_mirror);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--mirror"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hellaswag/hellaswag_val_full.txt.gz"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(bm::file_exists(no_mirror.dest + "/hellaswag/hellaswag_val_full.txt.gz"));
}

TEST_F(FetchTest, HubCheckpointFetch) {
  bm::HfFetchOptions o;
  o.endpoint = base_;
  o.download = quick();
  std::string dest = out_ + "/tiny";
  auto info = bm::fetch_hf_model("acme/tiny-llama", "main", dest, o);
  EXPECT_EQ(info.commit, "0123456789abcdef0123456789abcdef01234567");
  std::set<std::string> got;
  for (auto& f : info.files) got.insert(f.rfilename);
  std::set<std::string> want = {"config.json", "tokenizer.model", "tokenizer_config.json",
                                "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                "model.safetensors.index.json"};
  EXPECT_EQ(got, want);
  for (auto& n : want) EXPECT_EQ(read_all(dest + "/" + n), read_all(hub_ + "/acme/tiny-llama/" + n)) << n;
  for (const char* n : {"consolidated.safetensors", "README.md", "optimizer.pt", "original/params.json"})
    EXPECT_FALSE(bm::file_exists(dest + "/" + n)) << n;
  // The manifest, and resolve URLs pinned to the listed commit.
  auto m = nlohmann::json::parse(read_all(dest + "/.bitmerge-fetch.json"));
  EXPECT_EQ(m["repo"], "acme/tiny-llama");
  EXPECT_EQ(m["commit"], info.commit);
  EXPECT_EQ(m["files"].size(), want.size());
  // config.json is fetched last (its presence means "complete" to the runner).
  auto all_resolves = requests("/acme/tiny-llama/resolve/");
  ASSERT_FALSE(all_resolves.empty());
  EXPECT_NE(all_resolves.back()["path"].get<std::string>().find("/config.json"), std::string::npos);
  auto api = requests("/api/models/acme/tiny-llama/revision/main");
  ASSERT_EQ(api.size(), 1u);
  EXPECT_NE(api[0]["path"].get<std::string>().find("blobs=true"), std::string::npos);
  auto resolves = requests("/acme/tiny-llama/resolve/");
  EXPECT_EQ(resolves.size(), want.size());
  for (auto& r : resolves) EXPECT_NE(r["path"].get<std::string>().find("/resolve/" + info.commit + "/"), std::string::npos);
  // Unknown repository / revision: HTTP 404 named.
  try {
    bm::fetch_hf_model("acme/nope", "main", out_ + "/nope", o);
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bm::fetch_hf_model("acme/tiny-llama", "v9", out_ + "/v9", o), bm::Error);
  EXPECT_THROW(bm::fetch_hf_model("../etc", "main", out_ + "/bad", o), bm::Error);
}

TEST_F(FetchTest, GatedRepoNeedsTheToken) {
  bm::HfFetchOptions o;
  o.endpoint = base_;
  o.download = quick();
  std::string saved = env("HF_TOKEN");
  unsetenv("HF_TOKEN");
  unsetenv("HUGGING_FACE_HUB_TOKEN");
  try {
    bm::fetch_hf_model("acme/gated-llama", "main", out_ + "/g0", o);
    FAIL() << "gated repo fetched without a token";
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("401"), std::string::npos) << m;
    EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
  }
  setenv("HF_TOKEN", "secret-token-123", 1);
  write_all(log_, "");
  auto info = bm::fetch_hf_model("acme/gated-llama", "main", out_ + "/g1", o);
  if (saved.empty()) unsetenv("HF_TOKEN");
  else setenv("HF_TOKEN", saved.c_str(), 1);
  EXPECT_EQ(info.files.size(), 2u);
  EXPECT_EQ(read_all(out_ + "/g1/model.safetensors"), read_all(hub_ + "/acme/gated-llama/model.safetensors"));
  auto reqs = requests("/gated-llama");
  ASSERT_GE(reqs.size(), 3u);  // api + two resolves
  for (auto& r : reqs) {
    if (r["path"].get<std::string>().rfind("/cdn/", 0) == 0) continue;
    EXPECT_EQ(r["authorization"], "Bearer secret-token-123") << r.dump();
  }
  // Explicit option wins over the environment; a wrong token is refused.
  o.token = "wrong";
  EXPECT_THROW(bm::fetch_hf_model("acme/gated-llama", "main", out_ + "/g2", o), bm::Error);
}

TEST_F(FetchTest, ChecksumsFromResolveHeadersWhenTheListingHasNone) {
  bm::HfFetchOptions o;
  o.endpoint = base_;
  o.download = quick();
  auto info = bm::fetch_hf_model("acme/nometa-model", "main", out_ + "/nm", o);
  EXPECT_EQ(info.files.size(), 2u);
  EXPECT_EQ(read_all(out_ + "/nm/model.safetensors"), read_all(hub_ + "/acme/nometa-model/model.safetensors"));
  EXPECT_FALSE(requests("/acme/nometa-model/resolve/").empty());
  bool head = false;
  for (auto& r : requests("/acme/nometa-model/resolve/")) head = head || r["method"] == "HEAD";
  EXPECT_TRUE(head);
  // The CDN serves corrupted bytes: the X-Linked-Etag sha256 catches it.
  try {
    bm::fetch_hf_model("acme/nometa-badcdn", "main", out_ + "/bad", o);
    FAIL() << "corrupted LFS file accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(bm::file_exists(out_ + "/bad/model.safetensors"));
  EXPECT_FALSE(bm::file_exists(out_ + "/bad/model.safetensors.part"));
}

TEST(FetchSelect, PicksCheckpointFiles) {
  auto names = [](std::vector<std::string> v) {
    std::vector<bm::HfFile> out;
    for (auto& n : v) out.push_back({n, 1, "", ""});
    return out;
  };
  auto sel = [](const std::vector<bm::HfFile>& fs, std::vector<std::string> inc = {}) {
    std::set<std::string> s;
    for (auto& f : bm::hf_select_files(fs, inc)) s.insert(f.rfilename);
    return s;
  };
  auto bin_only = names({"config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                         "pytorch_model.bin.index.json", "training_args.bin", "README.md"});
  EXPECT_EQ(sel(bin_only), (std::set<std::string>{"config.json", "pytorch_model-00001-of-00002.bin",
                                                  "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json"}));
  auto both = names({"config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"});
  EXPECT_EQ(sel(both), (std::set<std::string>{"config.json", "model.safetensors", "tokenizer.json"}));
  auto adapter = names({"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md"});
  EXPECT_EQ(sel(adapter), (std::set<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
  auto mistral = names({"consolidated.safetensors", "params.json", "model-00001-of-00003.safetensors",
                        "model.safetensors.index.json", "tokenizer.model.v3"});
  EXPECT_EQ(sel(mistral), (std::set<std::string>{"model-00001-of-00003.safetensors", "model.safetensors.index.json"}));
  EXPECT_EQ(sel(mistral, {"*.json", "tokenizer.model.*"}),
            (std::set<std::string>{"model-00001-of-00003.safetensors", "model.safetensors.index.json", "params.json",
                                   "tokenizer.model.v3"}));
  EXPECT_TRUE(bm::glob_match("*.safetensors", "model.safetensors"));
  EXPECT_FALSE(bm::glob_match("*.safetensors", "sub/model.safetensors"));
  EXPECT_EQ(bm::url_encode("refs/pr/1"), "refs%2Fpr%2F1");
  EXPECT_EQ(bm::url_encode("a b/c.json", true), "a%20b/c.json");
}

TEST_F(FetchTest, CliVerbs) {
  std::string bin = env("BITMERGE_BIN");
  if (bin.empty() || access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << "bitmerge CLI not built (" << bin << ")";
  std::string dest = out_ + "/cli-data";
  std::string cmd = "'" + bin + "' data fetch --tasks humaneval,mbpp --mirror " + base_ + "/data --dest '" + dest +
                    "' 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd;
  EXPECT_EQ(bm::sha256_file(dest + "/humaneval/HumanEval.jsonl.gz"), table_sha("humaneval/HumanEval.jsonl.gz"));
  EXPECT_EQ(bm::sha256_file(dest + "/mbpp/mbpp.jsonl"), table_sha("mbpp/mbpp.jsonl"));
  std::string cmd2 = "HF_ENDPOINT=" + base_ + " '" + bin + "' fetch-model --repo acme/tiny-llama --dest '" + out_ +
                     "/cli-model' 2>&1";
  EXPECT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
  EXPECT_TRUE(bm::file_exists(out_ + "/cli-model/model-00002-of-00002.safetensors"));
  std::string cmd2b = "HF_ENDPOINT=" + base_ + " '" + bin + "' fetch acme/tiny-llama '" + out_ + "/cli-model2' 2>&1";
  EXPECT_EQ(std::system(cmd2b.c_str()), 0) << cmd2b;
  EXPECT_TRUE(bm::file_exists(out_ + "/cli-model2/config.json"));
  std::string cmd3 = "'" + bin + "' data fetch --tasks nosuch --dest '" + dest + "' >/dev/null 2>&1";
  int rc3 = std::system(cmd3.c_str());
  EXPECT_TRUE(WIFEXITED(rc3) && WEXITSTATUS(rc3) == 2);
}

}  // namespace
