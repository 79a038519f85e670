// Hugging Face hub checkpoints and benchmark data sets. See fetch.hpp.
#include <curl/curl.h>
#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/fetch/fetch.hpp"

namespace bm {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string strip_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool valid_repo_id(const std::string& repo) {
  if (repo.empty() || repo.size() > 200) return false;
  int slashes = 0;
  for (char c : repo) {
    if (c == '/') ++slashes;
    else if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  if (slashes > 1 || repo.front() == '/' || repo.back() == '/') return false;
  return repo.find("..") == std::string::npos;
}

// Hub file names come from the network: refuse anything that could escape dest_dir.
bool safe_relative_path(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\\') != std::string::npos || p.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) { return isxdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// HEAD of a resolve URL without following the redirect: X-Linked-Etag (LFS
// sha256) or ETag (git blob id) and the size.
void fill_from_head(const std::string& url, const std::string& token, HfFile& f) {
  CURL* h = curl_easy_init();
  if (!h) return;
  curl_slist* headers = nullptr;
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  std::string hdrs;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "bitmerge/1 (libcurl)");
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, +[](char* p, size_t sz, size_t n, void* u) -> size_t {
    static_cast<std::string*>(u)->append(p, sz * n);
    return sz * n;
  });
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdrs);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  if (headers) curl_slist_free_all(headers);
  if (rc != CURLE_OK || status >= 400) return;
  std::string linked, etag, length, linked_size;
  size_t pos = 0;
  while (pos < hdrs.size()) {
    size_t end = hdrs.find('\n', pos);
    if (end == std::string::npos) end = hdrs.size();
    std::string line = hdrs.substr(pos, end - pos);
    pos = end + 1;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    if (value.rfind("W/", 0) == 0) value = value.substr(2);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (name == "x-linked-etag") linked = value;
    else if (name == "etag") etag = value;
    else if (name == "x-linked-size") linked_size = value;
    else if (name == "content-length") length = value;
  }
  if (is_hex(linked, 64)) f.sha256 = lower(linked);
  else if (is_hex(etag, 64)) f.sha256 = lower(etag);
  else if (is_hex(etag, 40)) f.blob_id = lower(etag);
  if (f.size < 0) {
    // Content-Length of a redirect response is that of its body: only trusted without a redirect.
    if (!linked_size.empty()) f.size = std::atoll(linked_size.c_str());
    else if (!length.empty() && status == 200) f.size = std::atoll(length.c_str());
  }
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0;
}

std::string hf_endpoint(const HfFetchOptions& opts) {
  return strip_trailing_slash(opts.endpoint.empty() ? env_or("HF_ENDPOINT", "https://huggingface.co") : opts.endpoint);
}

std::string hf_token(const HfFetchOptions& opts) {
  if (!opts.token.empty()) return opts.token;
  return env_or("HF_TOKEN", env_or("HUGGING_FACE_HUB_TOKEN", ""));
}

HfRepoInfo hf_repo_info(const std::string& repo, const std::string& revision, const HfFetchOptions& opts) {
  if (!valid_repo_id(repo)) fail(repo, "not a hub repository id; use ORG/NAME, e.g. meta-llama/Llama-2-7b-hf");
  std::string rev = revision.empty() ? "main" : revision;
  std::string url = hf_endpoint(opts) + "/api/models/" + repo + "/revision/" + url_encode(rev) + "?blobs=true";
  std::string body = http_get_text(url, hf_token(opts));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    fail(url, std::string("response is not JSON (") + e.what() + "); check HF_ENDPOINT");
  }
  if (!j.is_object() || !j.contains("siblings") || !j["siblings"].is_array())
    fail(url, "response has no \"siblings\" list; check HF_ENDPOINT and the repository id");
  HfRepoInfo info;
  info.repo = repo;
  info.revision = rev;
  if (j.contains("sha") && j["sha"].is_string()) info.commit = j["sha"].get<std::string>();
  if (!info.commit.empty() && !is_hex(info.commit, 40)) info.commit.clear();
  for (auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    HfFile f;
    f.rfilename = s["rfilename"].get<std::string>();
    if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = lower(s["blobId"].get<std::string>());
    if (s.contains("lfs") && s["lfs"].is_object()) {
      auto& l = s["lfs"];
      if (l.contains("sha256") && l["sha256"].is_string()) f.sha256 = lower(l["sha256"].get<std::string>());
      if (l.contains("size") && l["size"].is_number_integer()) f.size = l["size"].get<int64_t>();
    }
    if (!f.sha256.empty() && !is_hex(f.sha256, 64)) f.sha256.clear();
    if (!f.blob_id.empty() && !is_hex(f.blob_id, 40)) f.blob_id.clear();
    info.files.push_back(f);
  }
  return info;
}

std::vector<HfFile> hf_select_files(const std::vector<HfFile>& files, const std::vector<std::string>& include) {
  static const std::set<std::string> kNamed = {
      "config.json",          "generation_config.json", "tokenizer.model",      "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",   "vocab.json",
      "merges.txt",           "adapter_config.json",     "model.safetensors.index.json"};
  auto top = [](const HfFile& f) { return f.rfilename.find('/') == std::string::npos; };
  auto ends = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  std::set<std::string> names;
  for (auto& f : files) names.insert(f.rfilename);
  bool model_st = false, any_st = false;
  for (auto& f : files) {
    if (!top(f) || !ends(f.rfilename, ".safetensors") || f.rfilename.rfind("adapter_model", 0) == 0) continue;
    any_st = true;
    if (f.rfilename.rfind("model", 0) == 0) model_st = true;
  }
  std::vector<HfFile> out;
  for (auto& f : files) {
    const std::string& n = f.rfilename;
    bool take = false;
    if (top(f)) {
      if (kNamed.count(n)) take = true;
      else if (n == "adapter_model.safetensors") take = true;
      else if (n == "adapter_model.bin") take = !names.count("adapter_model.safetensors");
      else if (ends(n, ".safetensors") && n.rfind("adapter_model", 0) != 0)
        take = model_st ? n.rfind("model", 0) == 0 : n.rfind("consolidated", 0) != 0;
      else if (!any_st && n.rfind("pytorch_model", 0) == 0 && (ends(n, ".bin") || n == "pytorch_model.bin.index.json"))
        take = true;
    }
    for (auto& p : include) take = take || glob_match(p, n);
    if (take) out.push_back(f);
  }
  return out;
}

HfRepoInfo fetch_hf_model(const std::string& repo, const std::string& revision, const std::string& dest_dir,
                          const HfFetchOptions& opts) {
  if (dest_dir.empty()) fail("--dest", "no destination directory given");
  HfRepoInfo info = hf_repo_info(repo, revision, opts);
  std::vector<HfFile> selected = hf_select_files(info.files, opts.include);
  // config.json / adapter_config.json last: callers (the runner) take their
  // presence to mean that the checkpoint is complete.
  std::stable_partition(selected.begin(), selected.end(), [](const HfFile& f) {
    return f.rfilename != "config.json" && f.rfilename != "adapter_config.json";
  });
  bool has_weights = false;
  for (auto& f : selected) {
    auto& n = f.rfilename;
    if (n.find(".safetensors") != std::string::npos || n.find(".bin") != std::string::npos) has_weights = true;
  }
  if (selected.empty() || !has_weights) {
    std::string listed;
    for (size_t i = 0; i < info.files.size() && i < 12; ++i) listed += (i ? ", " : "") + info.files[i].rfilename;
    fail(repo + "@" + info.revision, "no weights (*.safetensors / pytorch_model*.bin / adapter_model.*) in the repository (files: " +
                                         listed + "); check the repository id and revision, or pass --include PATTERN");
  }
  make_dirs(dest_dir);
  const std::string endpoint = hf_endpoint(opts);
  const std::string token = hf_token(opts);
  const std::string pin = info.commit.empty() ? info.revision : info.commit;
  nlohmann::json manifest = {{"repo", repo}, {"revision", info.revision}, {"commit", info.commit},
                             {"endpoint", endpoint}, {"files", nlohmann::json::array()}};
  int64_t total = 0;
  for (auto& f : selected) total += std::max<int64_t>(f.size, 0);
  log_info("fetch-model: " + repo + "@" + info.revision + (info.commit.empty() ? "" : " (" + info.commit.substr(0, 12) + ")") +
           ": " + std::to_string(selected.size()) + " files, " + std::to_string(total >> 20) + " MiB -> " + dest_dir);
  HfRepoInfo fetched = info;
  fetched.files.clear();
  for (auto& f0 : selected) {
    HfFile f = f0;
    if (!safe_relative_path(f.rfilename)) fail(f.rfilename, "unsafe file name in the hub listing; refusing to write it");
    std::string url = endpoint + "/" + repo + "/resolve/" + url_encode(pin) + "/" + url_encode(f.rfilename, true);
    if (f.sha256.empty() && f.blob_id.empty()) fill_from_head(url, token, f);
    DownloadOptions d = opts.download;
    d.bearer_token = token;
    d.expected_sha256 = f.sha256;
    d.expected_git_blob_sha1 = f.sha256.empty() ? f.blob_id : "";
    d.expected_size = f.size;
    if (d.expected_sha256.empty() && d.expected_git_blob_sha1.empty())
      log_warn(url + ": the hub gave no checksum; only the size is checked");
    DownloadResult r = download_file(url, dest_dir + "/" + f.rfilename, d);
    if (f.sha256.empty()) f.sha256 = r.sha256;
    if (f.size < 0) f.size = r.bytes;
    log_info("fetch-model: " + f.rfilename + (r.already_present ? " (already present)" : "") + " " + r.sha256.substr(0, 12));
    manifest["files"].push_back({{"name", f.rfilename}, {"size", r.bytes}, {"sha256", r.sha256}});
    fetched.files.push_back(f);
  }
  write_file_atomic(dest_dir + "/.bitmerge-fetch.json", manifest.dump(2) + "\n");
  return fetched;
}

// ---- benchmark data ----

std::vector<std::string> data_task_names() {
  std::vector<std::string> out;
  for (auto& f : data_files())
    if (std::find(out.begin(), out.end(), f.task) == out.end()) out.push_back(f.task);
  return out;
}

std::vector<DownloadResult> fetch_data(const std::vector<std::string>& tasks, const DataFetchOptions& opts) {
  if (opts.dest.empty()) fail("--dest", "no data directory given; pass --dest DIR (or set BITMERGE_DATA_DIR)");
  auto names = data_task_names();
  std::set<std::string> want;
  for (auto& t : tasks) {
    if (t == "all") {
      want.insert(names.begin(), names.end());
      continue;
    }
    if (std::find(names.begin(), names.end(), t) == names.end()) {
      std::string list;
      for (auto& n : names) list += (list.empty() ? "" : ",") + n;
      fail(t, "unknown data task" + did_you_mean(t, names) + "; known: " + list + ", all");
    }
    want.insert(t);
  }
  if (want.empty()) fail("--tasks", "no tasks given; pass e.g. --tasks mmlu,gsm8k or --tasks all");
  std::string mirror = strip_trailing_slash(opts.mirror);
  std::vector<DownloadResult> results;
  std::vector<std::string> no_home, failed;
  std::string first_error;
  for (auto& f : data_files()) {
    if (!want.count(f.task)) continue;
    std::string url = mirror.empty() ? f.url : mirror + "/" + url_encode(f.path, true);
    if (url.empty()) {
      no_home.push_back(f.path);
      continue;
    }
    DownloadOptions d = opts.download;
    d.expected_sha256 = f.sha256;
    d.expected_git_blob_sha1.clear();
    d.expected_size = -1;
    try {
      results.push_back(download_file(url, strip_trailing_slash(opts.dest) + "/" + f.path, d));
    } catch (const Error& e) {
      // Keep going: one unreachable source should not stop the others.
      log_warn(e.what());
      failed.push_back(f.path);
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (!failed.empty()) {
    std::string list;
    for (size_t i = 0; i < failed.size() && i < 5; ++i) list += (i ? ", " : "") + failed[i];
    if (failed.size() > 5) list += ", ... (" + std::to_string(failed.size()) + " files)";
    fail(list, "download failed; first error: " + first_error +
                   (no_home.empty() ? "" : " (derived files also need --mirror)"));
  }
  if (!no_home.empty()) {
    std::string list;
    for (auto& p : no_home) list += (list.empty() ? "" : ", ") + p;
    fail(list, "derived file(s) without a public home (see docs/data-sources.md); pass --mirror URL pointing at a "
               "copy of the data directory to fetch them (the other files were fetched)");
  }
  return results;
}

}  // namespace bm
