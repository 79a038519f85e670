// Resumable, verified HTTP(S) downloads (libcurl): benchmark data from its
// public homes (or a mirror) and Hugging Face hub checkpoints.
//
// A download writes "<dest>.part", resumes it with a Range request after an
// interruption, verifies sha256 (or the git blob id / size when that is all
// that is known) and renames it to <dest> only once verified: a partial or
// corrupt file never appears under the final name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm {

struct DownloadOptions {
  std::string bearer_token;           // sent as "Authorization: Bearer ..." (not forwarded to other hosts on redirect)
  std::string expected_sha256;        // lower-case hex; verified when set
  std::string expected_git_blob_sha1; // git blob id (hub files stored without LFS); verified when set
  int64_t expected_size = -1;         // verified when >= 0
  int retries = 4;                    // resumed attempts after a broken transfer
  double retry_delay_s = 1.0;         // doubled after each failed attempt
  long connect_timeout_s = 30;
  long low_speed_time_s = 120;        // abort an attempt slower than 1 KiB/s for this long
  bool progress = true;               // log progress of large files to stderr
  std::vector<std::string> headers;   // extra "Name: value" headers
};

struct DownloadResult {
  std::string path;          // the final path
  std::string sha256;        // of the final file
  int64_t bytes = 0;         // size of the final file
  int64_t resumed_from = 0;  // bytes already in <dest>.part when a Range request resumed it (0: fresh)
  bool already_present = false;  // <dest> existed and verified; nothing downloaded
};

// Downloads `url` to `dest` (parent directories created). When <dest> exists
// and verifies against the expectations, nothing is downloaded. Throws bm::Error
// naming the URL with the HTTP status or transfer error and what to do.
DownloadResult download_file(const std::string& url, const std::string& dest, const DownloadOptions& opts = {});

// GET of a small resource (API JSON) into memory; throws bm::Error on HTTP >= 400.
std::string http_get_text(const std::string& url, const std::string& bearer_token = "", long timeout_s = 60);

// Percent-encodes everything except unreserved characters (and '/' when keep_slash).
std::string url_encode(const std::string& s, bool keep_slash = false);

// ---- benchmark data ----

struct DataFile {
  std::string task;      // fetch group: the top folder of path ("mmlu", "truthfulqa", ...) or "tokenizers"
  std::string path;      // relative path under the data dir, e.g. "humaneval/HumanEval.jsonl.gz"
  std::string sha256;
  std::string url;       // public home (raw file at a pinned commit); "" = derived file, mirror only
};

// The table: every Task's data_sources() (tasks/common/task.hpp), then the tokenizers.
const std::vector<DataFile>& data_files();
std::vector<std::string> data_task_names();  // every task in the table, in table order

struct DataFetchOptions {
  std::string mirror;  // base URL: files are fetched from <mirror>/<path> instead of their homes
  std::string dest;    // data directory (BITMERGE_DATA_DIR layout)
  DownloadOptions download;  // expected_* fields are filled per file
};

// Fetches every file of the named tasks ("all" = every task). Derived files
// without a public home need --mirror; they are reported in the error.
// Returns the results in table order.
std::vector<DownloadResult> fetch_data(const std::vector<std::string>& tasks, const DataFetchOptions& opts);

// ---- Hugging Face hub ----

struct HfFile {
  std::string rfilename;
  int64_t size = -1;
  std::string sha256;   // LFS files
  std::string blob_id;  // git blob sha1
};

struct HfRepoInfo {
  std::string repo, revision, commit;  // commit: the resolved sha ("" if the API gave none)
  std::vector<HfFile> files;
};

struct HfFetchOptions {
  std::string endpoint;        // "" = $HF_ENDPOINT or https://huggingface.co
  std::string token;           // "" = $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN)
  std::vector<std::string> include;  // extra glob patterns to download besides the default selection
  DownloadOptions download;    // expected_* and bearer_token are filled per file
};

std::string hf_endpoint(const HfFetchOptions& opts);
std::string hf_token(const HfFetchOptions& opts);

// GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
HfRepoInfo hf_repo_info(const std::string& repo, const std::string& revision, const HfFetchOptions& opts);

// The files a checkpoint needs: config.json, generation_config.json, tokenizer
// files, *.safetensors + index (else *.bin + index), adapter files, plus `include`.
std::vector<HfFile> hf_select_files(const std::vector<HfFile>& files, const std::vector<std::string>& include = {});

// Downloads the selected files of repo@revision into dest_dir (resolve URLs
// pinned to the resolved commit), verified, and writes
// dest_dir/.bitmerge-fetch.json (repo, revision, commit, files, sha256).
// Returns the repo info with the files that were fetched.
HfRepoInfo fetch_hf_model(const std::string& repo, const std::string& revision, const std::string& dest_dir,
                          const HfFetchOptions& opts = {});

// fnmatch-style glob on the whole relative path ("*" does not cross '/').
bool glob_match(const std::string& pattern, const std::string& path);

}  // namespace bm
