// Trains a LLaMA-style SentencePiece model (BPE, byte fallback, digits split,
// unk=0 BOS=1 EOS=2, no normalization, whitespace kept) on in-memory text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm::train {

// Lines containing '\n' are split into several sentences (newlines become the
// <0x0A> byte token at encode time, as in LLaMA). `pieces` are kept whole
// (SentencePiece user-defined symbols, matched longest first wherever they
// occur; "\u2581" is the space mark); they count towards vocab_size. Writes
// `out_path` atomically.
void train_sentencepiece(const std::vector<std::string>& texts, int64_t vocab_size, const std::string& out_path,
                         uint64_t seed, const std::vector<std::string>& pieces = {});

}  // namespace bm::train
