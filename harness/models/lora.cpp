#include "harness/models/lora.hpp"

#include "harness/core/error.hpp"
#include "harness/models/checkpoint.hpp"

namespace bm {
std::string lora_base_model_path(const std::string&) { return ""; }
std::shared_ptr<Checkpoint> open_lora_checkpoint(const std::string& a, std::shared_ptr<Checkpoint>) {
  fail(a, "LoRA folding is not implemented yet");
}
}  // namespace bm
