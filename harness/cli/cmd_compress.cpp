// bitmerge compress: one expert's task vector, compressed at a position (1-bit
// sign, or --position POSITION:ternary[=DENSITY] for top-k ternary), written as
// a packed safetensors file (format: merging/packed_format.hpp). POSITION:bitdelta
// fits each matrix's scale to the expert's logits on --calib text first
// (harness/train/bitdelta.hpp) and stores it in the sign layout.
#include <torch/torch.h>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/core/log.hpp"
#include "harness/train/bitdelta.hpp"
#include "merging/packed_format.hpp"

namespace {
struct CompressArgs {
  std::string base, expert, position, output, name, calib;
  bm::train::BitDeltaCalibration calib_set;  // defaults: harness/train/bitdelta_config.hpp
  bm::train::BitDeltaConfig bitdelta;
};
}  // namespace

BM_COMMAND(compress, [](CLI::App& app) {
  auto a = std::make_shared<CompressArgs>();
  auto* sub = app.add_subcommand("compress", "compress an expert's task vector (1-bit sign, ternary or bitdelta) into a packed file");
  sub->add_option("--base", a->base, "base (pretrained) model dir")->required();
  sub->add_option("--expert", a->expert, "fine-tuned expert model dir")->required();
  sub->add_option("--position", a->position,
                  "attention | mlp | linear | none, optionally :sign (default), :ternary[=DENSITY] or :bitdelta (needs --calib)")
      ->required();
  sub->add_option("--output", a->output, "output .safetensors path")->required();
  sub->add_option("--name", a->name, "expert name recorded in the file (default: the expert dir's name)");
  sub->add_option("--calib", a->calib, "bitdelta: calibration text (.jsonl with text or prompt/completion, or plain text)");
  sub->add_option("--calib-rows", a->calib_set.rows, "bitdelta: calibration rows")->capture_default_str();
  sub->add_option("--calib-seq-len", a->calib_set.seq_len, "bitdelta: tokens per row")->capture_default_str();
  sub->add_option("--calib-steps", a->bitdelta.steps, "bitdelta: optimizer steps")->capture_default_str();
  sub->add_option("--calib-batch", a->bitdelta.batch_size, "bitdelta: rows per step")->capture_default_str();
  sub->add_option("--calib-lr", a->bitdelta.lr, "bitdelta: Adam learning rate of the scales")->capture_default_str();
  sub->callback([a] {
    auto pos = bm::parse_compression(a->position, "--position");
    const bool bitdelta = pos.scheme == bm::Scheme::BitDelta;
    if (bitdelta && a->calib.empty())
      bm::fail("--calib", "scheme bitdelta fits its scales on calibration text; give --calib FILE (e.g. the mini family's data/corpus/<domain>.jsonl)");
    if (!bitdelta && !a->calib.empty())
      bm::fail("--calib", "only scheme bitdelta uses calibration text; drop --calib or use --position " +
                              std::string(bm::position_name(pos.position)) + ":bitdelta");
    std::string name = a->name;
    if (name.empty()) {
      std::string d = a->expert;
      while (!d.empty() && d.back() == '/') d.pop_back();
      name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
    }
    auto base = bm::Checkpoint::open(a->base);
    auto expert = bm::Checkpoint::open(a->expert);
    std::map<std::string, float> scales;
    if (bitdelta) {
      auto bm_ = bm::Transformer::load(a->base, torch::kCPU, torch::kFloat32);
      auto em = bm::Transformer::load(a->expert, torch::kCPU, torch::kFloat32);
      auto tok = bm::Tokenizer::load_from_model_dir(a->base);
      auto rows = bm::train::calibration_rows(*tok, a->calib, a->calib_set.rows, a->calib_set.seq_len);
      auto fit = bm::train::fit_bitdelta_scales(*bm_, *em, pos.position, rows, a->bitdelta);
      scales = fit.fitted;
      bm::log_info("compress: bitdelta fitted " + std::to_string(scales.size()) + " scales on " +
                   std::to_string(rows.size(0)) + " x " + std::to_string(rows.size(1)) + " tokens of " + a->calib +
                   " (" + a->bitdelta.canonical_text() + "): logit MSE " + std::to_string(fit.loss_init) +
                   " (alpha = mean|delta|) -> " + std::to_string(fit.loss_final));
    }
    auto s = bm::merging::write_packed_task_vector(*base, *expert, pos, name, a->output, bitdelta ? &scales : nullptr);
    for (auto& n : s.notes) bm::log_info("compress: " + n);
    bm::log_info("compress: wrote " + a->output + " (" + std::to_string(s.file_bytes) + " bytes, " +
                 std::to_string(s.packed_tensors) + " " + (pos.scheme == bm::Scheme::Ternary ? "ternary" : bitdelta ? "1-bit bitdelta" : "1-bit") +
                 " tensors, " + std::to_string(s.dense_tensors) +
                 " full-precision)");
  });
});
