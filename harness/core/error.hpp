// User-facing errors: one line that names the file, tensor or key and says
// what to do. main() catches bm::Error once and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace bm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws bm::Error("<where>: <what>") ; `where` is a file, key or tensor name.
[[noreturn]] void fail(const std::string& where, const std::string& what);

// Edit distance between two strings (Levenshtein), for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `key`, or "" when none is reasonably close.
std::string closest_name(const std::string& key, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "" : append to unknown-key errors.
std::string did_you_mean(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace bm
