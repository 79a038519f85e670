// PEFT LoRA adapters folded into their base: W' = W + scale * B @ A with
// scale = lora_alpha / r (lora_alpha / sqrt(r) when use_rslora).
#pragma once
#include <memory>
#include <string>

namespace bm {

class Checkpoint;

// base_model_name_or_path from <adapter_dir>/adapter_config.json ("" if absent).
std::string lora_base_model_path(const std::string& adapter_dir);

// The folded model (names, dtypes and shapes are the base's).
std::shared_ptr<Checkpoint> open_lora_checkpoint(const std::string& adapter_dir, std::shared_ptr<Checkpoint> base);

}  // namespace bm
