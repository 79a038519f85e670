// On-disk cell cache: one JSON file per finished cell, written atomically, so
// a killed run loses at most the cells in flight. Variant locks (flock) let
// several workers, GPUs or Slurm tasks share one cache; the kernel drops a
// dead process's lock, so nothing needs cleaning after kill -9.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace bm::runner {

class CellStore {
 public:
  explicit CellStore(std::string cells_dir);  // Experiment::cell_dir()
  const std::string& dir() const { return dir_; }
  std::string cell_path(const std::string& key) const;
  bool has(const std::string& key) const;
  nlohmann::json read(const std::string& key) const;  // throws naming the file when corrupt
  void write(const std::string& key, const nlohmann::json& result) const;
  size_t count_present(const std::vector<std::string>& keys) const;

 private:
  std::string dir_;  // <results_dir>/cells, or a shared --cells-dir
};

// An exclusive advisory lock on <dir>/locks/<name>.lock, released on
// destruction or process death.
class FileLock {
 public:
  FileLock(const std::string& dir, const std::string& name);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool try_lock();  // non-blocking
  void lock();      // blocking
  void unlock();

 private:
  std::string path_;
  int fd_ = -1;
  bool held_ = false;
};

}  // namespace bm::runner
