#include "harness/runner/cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm::runner {

CellStore::CellStore(std::string cells_dir) : dir_(std::move(cells_dir)) { bm::make_dirs(dir_); }

std::string CellStore::cell_path(const std::string& key) const { return dir_ + "/" + key + ".json"; }

bool CellStore::has(const std::string& key) const { return bm::file_exists(cell_path(key)); }

nlohmann::json CellStore::read(const std::string& key) const {
  std::string p = cell_path(key);
  try {
    return nlohmann::json::parse(bm::read_text_file(p));
  } catch (const nlohmann::json::exception& e) {
    bm::fail(p, std::string("corrupt cell result (") + e.what() + "); delete the file to recompute the cell");
  }
}

void CellStore::write(const std::string& key, const nlohmann::json& result) const {
  bm::write_file_atomic(cell_path(key), result.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

size_t CellStore::count_present(const std::vector<std::string>& keys) const {
  size_t n = 0;
  for (auto& k : keys) n += has(k);
  return n;
}

FileLock::FileLock(const std::string& dir, const std::string& name) {
  bm::make_dirs(dir + "/locks");
  path_ = dir + "/locks/" + name + ".lock";
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) bm::fail(path_, std::string("cannot open lock file: ") + std::strerror(errno) + "; check permissions");
}
FileLock::~FileLock() {
  unlock();
  if (fd_ >= 0) ::close(fd_);
}
bool FileLock::try_lock() {
  if (held_) return true;
  held_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  return held_;
}
void FileLock::lock() {
  while (!held_) {
    if (::flock(fd_, LOCK_EX) == 0)
      held_ = true;
    else if (errno != EINTR)
      bm::fail(path_, std::string("flock failed: ") + std::strerror(errno));
  }
}
void FileLock::unlock() {
  if (held_) ::flock(fd_, LOCK_UN);
  held_ = false;
}

}  // namespace bm::runner
