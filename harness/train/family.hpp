// Builds the mini model family: synthetic benchmark data, a SentencePiece
// tokenizer, a LLaMA-architecture base pretrained on all domains, and three
// experts (chat, math, code) fully fine-tuned from it. Output layout:
//   DIR/data/        benchmark-format files (see docs/mini-family.md)
//   DIR/models/{base,chat,math,code}/   HF dirs (config.json, model.safetensors, tokenizer.model)
//   DIR/tokenizer/tokenizer.model
//   DIR/family.toml  the runner's family description (paths relative to DIR)
//   DIR/family.json  cache key, configs, training stats
// Models are reused when family.json's key (hash of generator + tokenizer +
// model + trainer settings) matches and every model dir is complete.
#pragma once
#include <string>

#include "harness/models/model_config.hpp"
#include "harness/train/trainer.hpp"
#include "tasks/synth/synth.hpp"

namespace bm::train {

struct FamilyConfig {
  std::string name = "nano";
  synth::SynthConfig generator;
  int64_t tokenizer_vocab = 1000;
  ModelConfig model;  // vocab_size is filled from the tokenizer
  uint64_t init_seed = 1;
  TrainConfig pretrain, finetune;
  int64_t chat_steps = -1, math_steps = -1, code_steps = -1;  // -1: finetune.steps
  // Share (0..0.9) of each expert's fine-tune text drawn from the pretraining
  // mixture ([finetune] replay), so an expert keeps the base's skill outside its domain.
  double replay = 0;
  static FamilyConfig from_toml(const std::string& path);
  std::string canonical_text() const;
  std::string cache_key() const;  // 16 hex chars
};

struct BuildOptions {
  std::string out_dir;
  std::string device = "cpu";
  int threads = 0;  // 0: libtorch default
  bool force = false;
  // With device cpu and threads = 1, fine-tune the experts side by side (one
  // per core, same bits as one after another); false: one after another.
  bool parallel_experts = true;
};

struct BuildSummary {
  std::string out_dir, key;
  bool cache_hit = false;
  double seconds = 0;
  std::string text;  // human-readable summary
};

BuildSummary build_family(const FamilyConfig& cfg, const BuildOptions& opts);

}  // namespace bm::train
