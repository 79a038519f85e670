#include "harness/models/fingerprint.hpp"

#include <algorithm>
#include <vector>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/strings.hpp"

namespace bm {

std::string model_fingerprint(const std::string& path) {
  if (file_exists(path) && !is_directory(path)) return sha256_hex(base_name(path) + ":" + sha256_file_cached(path) + "\n");
  if (!is_directory(path)) fail(path, "cannot open the model directory; check --model");
  std::vector<std::string> files = list_dir(path);  // sorted
  std::string acc;
  for (const auto& f : files) {
    if (f == "config.json" || f == "adapter_config.json" || f == "tokenizer.model" || ends_with(f, ".safetensors") ||
        ends_with(f, ".bin") || ends_with(f, ".index.json"))
      acc += f + ":" + sha256_file_cached(path + "/" + f) + "\n";
  }
  if (acc.empty()) fail(path, "no config.json or weight files to fingerprint; check --model");
  return sha256_hex(acc);
}

}  // namespace bm
