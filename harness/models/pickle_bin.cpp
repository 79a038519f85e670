#include "harness/models/pickle_bin.hpp"

#include "harness/core/error.hpp"
#include "harness/models/checkpoint.hpp"

namespace bm {
std::vector<std::pair<std::string, torch::Tensor>> load_torch_bin(const std::string& path) {
  fail(path, "PyTorch .bin reading is not implemented yet; convert to safetensors");
}
std::shared_ptr<Checkpoint> open_bin_checkpoint(const std::string& d, const std::vector<std::string>&, bool) {
  fail(d, "PyTorch .bin reading is not implemented yet; convert to safetensors");
}
}  // namespace bm
