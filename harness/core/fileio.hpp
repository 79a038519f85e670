// Files: whole-file reads, atomic writes (temp file + rename, so nothing is
// ever left half-written under its final name), sha256.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace bm {

bool file_exists(const std::string& path);
std::string read_text_file(const std::string& path);  // throws bm::Error naming the path

// Writes `content` to `path` via "<path>.tmp-<pid>" and rename(2).
void write_file_atomic(const std::string& path, const std::string& content);

// Streamed atomic writer: write through stream(), then commit(). If commit()
// is never called (exception, kill), the temp file is removed/ignored and the
// final path is untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  std::ofstream& stream() { return out_; }
  const std::string& temp_path() const { return tmp_; }
  void commit();  // flush, fsync, rename

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

std::string sha256_hex(const void* data, size_t n);
std::string sha256_hex(const std::string& s);
std::string sha256_file(const std::string& path);
// sha256_file, remembered per (path, inode, size, mtime) in
// $BITMERGE_CACHE_DIR (default $XDG_CACHE_HOME/bitmerge, else ~/.cache/bitmerge)
// so that a 13 GB checkpoint is read once, not on every run.
std::string sha256_file_cached(const std::string& path);
// A path fit for committed files: relative to `root` when inside it (else
// unchanged). Keeps machine-specific prefixes out of results.json.
std::string relative_to(const std::string& path, const std::string& root);

// Creates a directory and its parents; throws bm::Error on failure.
void make_dirs(const std::string& path);

// POSIX helpers instead of std::filesystem: libtorch.so exports its own copy
// of std::filesystem, and in programs linked with libtorch the dynamic linker
// binds e.g. fs::remove_all to that copy, which crashes (SIGSEGV, null call).
bool is_directory(const std::string& path);
// Like `rm -rf`: removes a file or a whole tree; absent is fine; throws on failure.
void remove_tree(const std::string& path);
// Entry names of a directory (no "." / ".."), sorted; throws naming the dir.
std::vector<std::string> list_dir(const std::string& dir);

// "a/b/c" -> "a/b" ("c" -> ".", "/c" -> "/") and -> "c", as the shell's dirname / basename.
std::string parent_dir(const std::string& path);
std::string base_name(const std::string& path);

// Where the running program's repository may be: the executable's parent
// directory (the repo when it is built in <repo>/build*), then the current directory.
std::vector<std::string> program_roots();
// The benchmark data directory: `explicit_dir` when given (a flag, a family's
// data_dir), else $BITMERGE_DATA_DIR, else <root>/../shared/data for the first
// of `roots` that has one, else the first root's (relative "../shared/data"
// without roots): a path that then fails naming itself.
std::string resolve_data_dir(const std::string& explicit_dir, const std::vector<std::string>& roots = program_roots());

}  // namespace bm
