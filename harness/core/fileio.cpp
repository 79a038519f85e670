#include "harness/core/fileio.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <vector>

#include "harness/core/error.hpp"

namespace bm {
namespace fs = std::filesystem;

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open for reading: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static std::string temp_name(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}

static void fsync_path(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  f.commit();
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(temp_name(path_)) {
  fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail(path_, std::string("cannot create temporary file ") + tmp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::commit() {
  out_.flush();
  if (!out_) fail(path_, "write failed (disk full?); the previous file, if any, is untouched");
  out_.close();
  fsync_path(tmp_);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(path_, std::string("cannot rename temporary file into place: ") + std::strerror(errno));
  committed_ = true;
}

namespace {
struct MdCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  MdCtx() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~MdCtx() { EVP_MD_CTX_free(ctx); }
  void update(const void* d, size_t n) { EVP_DigestUpdate(ctx, d, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out(len * 2, '0');
    for (unsigned i = 0; i < len; ++i) out[2 * i] = digits[md[i] >> 4], out[2 * i + 1] = digits[md[i] & 15];
    return out;
  }
};
}  // namespace

std::string sha256_hex(const void* data, size_t n) {
  MdCtx c;
  c.update(data, n);
  return c.hex();
}
std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open to compute sha256");
  MdCtx c;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    c.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return c.hex();
}

std::string sha256_file_cached(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, "cannot stat to compute sha256");
  std::string dir;
  if (const char* e = std::getenv("BITMERGE_CACHE_DIR"); e && *e) dir = e;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::string(x) + "/bitmerge";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/bitmerge";
  if (dir.empty() || st.st_size < (int64_t(64) << 20)) return sha256_file(path);  // small: just read it
  std::error_code ec;
  std::string abs = fs::absolute(path, ec).lexically_normal().string();
  std::string key = sha256_hex(abs + "\n" + std::to_string(st.st_ino) + "\n" + std::to_string(st.st_size) + "\n" +
                               std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  std::string entry = dir + "/sha256/" + key.substr(0, 32);
  if (file_exists(entry)) {
    std::string h = read_text_file(entry);
    if (h.size() == 64) return h;
  }
  std::string h = sha256_file(path);
  try {
    make_dirs(dir + "/sha256");
    write_file_atomic(entry, h);
  } catch (const Error&) {
    // an unwritable cache only costs time
  }
  return h;
}

std::string relative_to(const std::string& path, const std::string& root) {
  if (root.empty() || path.empty()) return path;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  fs::path r = fs::weakly_canonical(fs::absolute(root, ec), ec);
  fs::path rel = p.lexically_relative(r);
  if (rel.empty() || *rel.begin() == "..") return path;
  return rel.string();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) fail(path, "cannot create directory: " + ec.message());
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) fail(dir, std::string("cannot list directory: ") + std::strerror(errno));
  std::vector<std::string> out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;  // absent
  if (S_ISDIR(st.st_mode)) {
    for (auto& n : list_dir(path)) remove_tree(path + "/" + n);
    if (::rmdir(path.c_str()) != 0) fail(path, std::string("cannot remove directory: ") + std::strerror(errno));
  } else if (::unlink(path.c_str()) != 0) {
    fail(path, std::string("cannot remove: ") + std::strerror(errno));
  }
}

std::string parent_dir(const std::string& path) {
  auto s = path.find_last_of('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return path.substr(0, s);
}

std::string base_name(const std::string& path) {
  auto s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

std::vector<std::string> program_roots() {
  std::vector<std::string> roots;
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) roots.push_back(parent_dir(parent_dir(std::string(buf, static_cast<size_t>(n)))));
  if (::getcwd(buf, sizeof(buf))) roots.push_back(buf);
  return roots;
}

std::string resolve_data_dir(const std::string& explicit_dir, const std::vector<std::string>& roots) {
  if (!explicit_dir.empty()) return explicit_dir;
  if (const char* env = std::getenv("BITMERGE_DATA_DIR"); env && *env) return env;
  for (const auto& r : roots)
    if (is_directory(r + "/../shared/data")) return r + "/../shared/data";
  return roots.empty() ? "../shared/data" : roots.front() + "/../shared/data";
}

}  // namespace bm
