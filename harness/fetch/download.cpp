// Resumable, verified downloads with libcurl. See fetch.hpp.
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/log.hpp"
#include "harness/fetch/fetch.hpp"

namespace bm {
namespace {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Easy {
  CURL* h;
  curl_slist* headers = nullptr;
  Easy() : h(curl_easy_init()) {
    if (!h) fail("libcurl", "curl_easy_init failed");
  }
  ~Easy() {
    if (headers) curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  void add_header(const std::string& hdr) { headers = curl_slist_append(headers, hdr.c_str()); }
};

void common_setup(Easy& e, const std::string& url, const std::string& token, long connect_timeout_s,
                  const std::vector<std::string>& extra_headers) {
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e.h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_USERAGENT, "bitmerge/1 (libcurl)");
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, connect_timeout_s);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
  // A custom Authorization header is not sent to another host after a redirect
  // (libcurl >= 7.58), so the token never reaches a CDN.
  if (!token.empty()) e.add_header("Authorization: Bearer " + token);
  for (auto& h : extra_headers) e.add_header(h);
  if (e.headers) curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
}

std::string status_hint(long status, bool has_token) {
  if (status == 401 || status == 403)
    return has_token ? "access refused with the given token: check that HF_TOKEN has access and that the "
                       "model's license was accepted on its page"
                     : "authentication required: set HF_TOKEN (a token with access; accept the model's "
                       "license on its page for gated repos)";
  if (status == 404) return "not found: check the URL (repository name, revision, file name) or the --mirror base";
  if (status == 429) return "rate limited: wait and run the command again (downloads resume)";
  if (status >= 500) return "server error: run the command again later (downloads resume) or use --mirror";
  return "check the URL";
}

std::string reason(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

std::string one_line(std::string s, size_t max = 200) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

[[noreturn]] void http_fail(const std::string& url, long status, const std::string& body, bool has_token) {
  std::string r = reason(status);
  std::string msg = "HTTP " + std::to_string(status) + (r.empty() ? "" : " " + r);
  std::string b = one_line(body);
  if (!b.empty()) msg += " (" + b + ")";
  fail(url, msg + "; " + status_hint(status, has_token));
}

int64_t file_size(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

std::string git_blob_sha1_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open for hashing: ") + strerror(errno));
  int64_t size = file_size(path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  std::string head = "blob " + std::to_string(size);
  EVP_DigestUpdate(ctx, head.data(), head.size() + 1);  // includes the NUL
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) EVP_DigestUpdate(ctx, buf.data(), n);
  fclose(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx, md, &md_len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < md_len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// "" when `path` satisfies the expectations, else a description of the mismatch.
// Sets *sha to the file's sha256 when it was computed.
std::string verify(const std::string& path, const DownloadOptions& o, std::string* sha) {
  int64_t size = file_size(path);
  if (o.expected_size >= 0 && size != o.expected_size)
    return "size " + std::to_string(size) + " bytes, expected " + std::to_string(o.expected_size);
  if (!o.expected_git_blob_sha1.empty()) {
    std::string got = git_blob_sha1_file(path);
    if (got != o.expected_git_blob_sha1) return "git blob id " + got + ", expected " + o.expected_git_blob_sha1;
  }
  *sha = sha256_file(path);
  if (!o.expected_sha256.empty() && *sha != o.expected_sha256)
    return "sha256 " + *sha + ", expected " + o.expected_sha256;
  return "";
}

bool has_expectations(const DownloadOptions& o) {
  return !o.expected_sha256.empty() || !o.expected_git_blob_sha1.empty() || o.expected_size >= 0;
}

struct Sink {
  CURL* h = nullptr;
  int fd = -1;
  int64_t resume_from = 0;
  bool first = true;
  long status = 0;
  std::string error_body;
  bool write_error = false;
  int err = 0;
  bool truncated_restart = false;
};

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t n = size * nmemb;
  if (s->first) {
    s->first = false;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status == 200 && s->resume_from > 0) {
      // The server ignored the Range request: start over.
      if (ftruncate(s->fd, 0) != 0) {
        s->write_error = true;
        s->err = errno;
        return 0;
      }
      s->truncated_restart = true;
    }
  }
  if (s->status >= 300) {
    if (s->error_body.size() < 2000) s->error_body.append(ptr, std::min<size_t>(n, 2000));
    return n;
  }
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(s->fd, ptr + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      s->write_error = true;
      s->err = errno;
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  return n;
}

struct ProgressState {
  std::string name;
  int64_t offset = 0;
  std::chrono::steady_clock::time_point start, last;
};

int progress_cb(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* p = static_cast<ProgressState*>(user);
  auto now = std::chrono::steady_clock::now();
  if (dltotal < (16 << 20) || now - p->last < std::chrono::seconds(10)) return 0;
  p->last = now;
  double secs = std::chrono::duration<double>(now - p->start).count();
  double mb = 1.0 / (1 << 20);
  char buf[256];
  snprintf(buf, sizeof buf, "fetch: %s %.0f / %.0f MiB (%.0f%%), %.1f MiB/s", p->name.c_str(),
           (p->offset + dlnow) * mb, (p->offset + dltotal) * mb, 100.0 * (p->offset + dlnow) / (p->offset + dltotal),
           secs > 0 ? dlnow * mb / secs : 0.0);
  log_info(buf);
  return 0;
}

void fsync_path(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

}  // namespace

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string http_get_text(const std::string& url, const std::string& bearer_token, long timeout_s) {
  ensure_curl();
  double delay = 1.0;
  for (int attempt = 0;; ++attempt) {
    Easy e;
    common_setup(e, url, bearer_token, 30, {});
    std::string body;
    curl_easy_setopt(e.h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION,
                     +[](char* p, size_t sz, size_t n, void* u) -> size_t {
                       static_cast<std::string*>(u)->append(p, sz * n);
                       return sz * n;
                     });
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &body);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(e.h);
    long status = 0;
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &status);
    // Transient failures (connection, 429, 5xx) are retried twice.
    bool transient = rc != CURLE_OK || status == 429 || status >= 500;
    if (transient && attempt < 2) {
      log_warn(url + ": " + (rc != CURLE_OK ? std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc))
                                            : "HTTP " + std::to_string(status)) +
               "; retrying");
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      delay *= 2;
      continue;
    }
    if (rc != CURLE_OK)
      fail(url, std::string("request failed: ") + (errbuf[0] ? errbuf : curl_easy_strerror(rc)) +
                    "; check the network, the endpoint (HF_ENDPOINT) or use a mirror");
    if (status >= 400) http_fail(url, status, body, !bearer_token.empty());
    return body;
  }
}

namespace {
DownloadResult download_locked(const std::string& url, const std::string& dest, const DownloadOptions& opts);
}

DownloadResult download_file(const std::string& url, const std::string& dest, const DownloadOptions& opts) {
  try {
    return download_locked(url, dest, opts);
  } catch (...) {
    // Nothing useful to resume from: do not leave an empty .part behind.
    if (file_size(dest + ".part") == 0) unlink((dest + ".part").c_str());
    throw;
  }
}

namespace {
DownloadResult download_locked(const std::string& url, const std::string& dest, const DownloadOptions& opts) {
  ensure_curl();
  DownloadResult result;
  result.path = dest;
  make_dirs(parent_dir(dest));
  const std::string part = dest + ".part";

  // Lock the .part file so that concurrent fetches of the same file (array
  // jobs) wait for each other instead of appending to the same file.
  int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail(part, std::string("cannot create: ") + strerror(errno) + "; check that the destination is writable");
  if (flock(fd, LOCK_EX) != 0) {
    close(fd);
    fail(part, std::string("cannot lock: ") + strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  // Already there (possibly completed by a concurrent fetch while we waited)?
  if (file_exists(dest)) {
    std::string sha;
    std::string why = has_expectations(opts) ? verify(dest, opts, &sha) : "";
    if (why.empty()) {
      if (sha.empty()) sha = sha256_file(dest);
      struct stat a, b;
      bool same_inode = fstat(fd, &a) == 0 && stat(dest.c_str(), &b) == 0 && a.st_ino == b.st_ino;
      if (!same_inode) unlink(part.c_str());  // our empty placeholder
      result.sha256 = sha;
      result.bytes = file_size(dest);
      result.already_present = true;
      return result;
    }
    log_warn(dest + ": existing file does not verify (" + why + "); downloading it again");
  }
  // The lock is on the inode we opened; if a concurrent fetch renamed it into
  // place meanwhile, start a fresh part file.
  {
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(part.c_str(), &b) != 0 || a.st_ino != b.st_ino) {
      return download_locked(url, dest, opts);
    }
  }

  const bool has_token = !opts.bearer_token.empty();
  double delay = opts.retry_delay_s;
  std::string last_error;
  bool restarted_after_bad_range = false;
  for (int attempt = 0;; ++attempt) {
    int64_t have = file_size(part);
    if (have < 0) have = 0;
    if (opts.expected_size >= 0 && have > opts.expected_size) {
      if (ftruncate(fd, 0) != 0) fail(part, std::string("cannot truncate: ") + strerror(errno));
      have = 0;
    }
    if (attempt == 0) result.resumed_from = have;
    bool complete = opts.expected_size >= 0 && have == opts.expected_size && have > 0;
    long status = 0;
    if (!complete) {
      Easy e;
      common_setup(e, url, opts.bearer_token, opts.connect_timeout_s, opts.headers);
      Sink sink;
      sink.h = e.h;
      sink.fd = fd;
      sink.resume_from = have;
      if (have > 0) curl_easy_setopt(e.h, CURLOPT_RANGE, (std::to_string(have) + "-").c_str());
      curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, write_cb);
      curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
      curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
      curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, opts.low_speed_time_s);
      ProgressState ps;
      ps.name = base_name(dest);
      ps.offset = have;
      ps.start = ps.last = std::chrono::steady_clock::now();
      if (opts.progress) {
        curl_easy_setopt(e.h, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(e.h, CURLOPT_XFERINFODATA, &ps);
        curl_easy_setopt(e.h, CURLOPT_NOPROGRESS, 0L);
      }
      char errbuf[CURL_ERROR_SIZE] = {0};
      curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
      CURLcode rc = curl_easy_perform(e.h);
      curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &status);
      if (sink.write_error) fail(part, std::string("write failed: ") + strerror(sink.err) + "; check free disk space");
      if (status == 200 && have > 0 && !sink.truncated_restart) {
        // 200 with an empty body after a Range request: the file is empty.
        if (ftruncate(fd, 0) != 0) fail(part, std::string("cannot truncate: ") + strerror(errno));
      }
      if (status == 416 && have > 0) {
        // Nothing left to fetch: the part file may already be complete.
        complete = true;
      } else if (status >= 400) {
        bool retryable = status == 429 || status >= 500;
        if (!retryable || attempt >= opts.retries) http_fail(url, status, sink.error_body, has_token);
        last_error = "HTTP " + std::to_string(status);
      } else if (rc != CURLE_OK) {
        last_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (attempt >= opts.retries)
          fail(url, "transfer failed after " + std::to_string(attempt + 1) + " attempts (" + last_error + "); " +
                        std::to_string(file_size(part)) + " bytes kept in " + part +
                        ": run the command again to resume");
      } else if (status >= 300) {
        fail(url, "HTTP " + std::to_string(status) + " without a usable redirect; check the URL");
      } else {
        complete = true;
      }
    }
    if (complete) {
      std::string sha;
      std::string why = verify(part, opts, &sha);
      if (why.empty()) {
        fsync(fd);
        if (rename(part.c_str(), dest.c_str()) != 0)
          fail(dest, std::string("cannot rename from .part: ") + strerror(errno));
        fsync_path(parent_dir(dest), O_RDONLY | O_DIRECTORY);
        result.sha256 = sha;
        result.bytes = file_size(dest);
        return result;
      }
      if (have > 0 && !restarted_after_bad_range) {
        // Bytes kept from an earlier transfer were not a prefix of this file
        // (changed upstream, or a stale part): start from scratch once.
        log_warn(url + ": resumed download does not verify (" + why + "); downloading it again from the start");
        restarted_after_bad_range = true;
        if (ftruncate(fd, 0) != 0) fail(part, std::string("cannot truncate: ") + strerror(errno));
        continue;
      }
      unlink(part.c_str());
      fail(url, "downloaded file does not verify: " + why + "; it was discarded (not saved as " + dest +
                    "): run again, or check the source / --mirror");
    }
    log_warn(url + ": attempt " + std::to_string(attempt + 1) + " failed (" + last_error + "); resuming in " +
             std::to_string(delay).substr(0, 4) + " s");
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    delay *= 2;
  }
}

}  // namespace

}  // namespace bm
