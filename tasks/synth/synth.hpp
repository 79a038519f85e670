// Synthetic data for the self-built mini model family (torch-free).
// Three domains with learnable skills, each written in the file formats of the
// real benchmarks (see ../shared/data/README.md) so the same loaders, prompts
// and metrics apply unchanged:
//   knowledge (chat): a generated world of countries and their attributes ->
//     MMLU CSVs, HellaSwag 6-line text, TruthfulQA mc_task.json;
//   math: arithmetic word problems ("#### N") -> GSM8K jsonl; linear
//     equations with \boxed{} answers -> MATH_test.jsonl / math500_test.jsonl;
//   code: Python functions from templates -> HumanEval.jsonl.gz, mbpp.jsonl.
// Everything is a pure function of SynthConfig (own RNG, no std distributions,
// so files are byte-identical across platforms). Test, dev/validation and
// train items are disjoint: knowledge by fact, math by problem text, code by
// (template, parameter).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm::synth {

struct SynthConfig {
  uint64_t seed = 1234;
  int countries = 40;            // knowledge world size (4 facts each)
  int n_test = 60;               // test items per benchmark (MMLU: over all subjects)
  int n_train_gsm8k = 2000;      // GSM8K-format train problems (fine-tune + router)
  int n_train_math = 1500;       // MATH-format train problems (fine-tune only)
  int pretrain_docs = 6000;      // documents in the pretraining mixture
  int fact_repeats = 6;          // statements of each fact in the chat data (rotating phrasings)
  int misconception_repeats = 6; // how often each misconception appears in pretraining
  int qa_repeats = 2;            // short free-form QA per fact in the chat data ("Q: <question>\nA: <value>.")
  int profiles = 4;              // country profiles (all facts of a country, shuffled order) in the chat data
  int mc_practice = 8;           // MMLU-format practice items (choice shuffles) per train fact
  int math_max = 20;             // every number and intermediate result of a math problem is in 1..math_max
  int code_k_max = 40;           // code problems: 10 templates x k in 2..code_k_max (HumanEval + MBPP test need 2 n_test + 30)
  // The base's partial skill (pretraining as a mixture, like a real base's web
  // text): each fact's truth stated pretrain_fact_repeats times beside the
  // misconceptions, and pretrain_share percent of each expert's fine-tune
  // examples (benchmark formats on train items only) as plain documents.
  int pretrain_fact_repeats = 0;
  int pretrain_share = 0;        // 0..100
  // Per-domain overrides of pretrain_share (-1 = pretrain_share): a real base
  // knows some domains better than others (LLaMA-2-7B: MMLU 45, GSM8K 15).
  int pretrain_share_chat = -1, pretrain_share_math = -1, pretrain_share_code = -1;
  // Multiple-choice quizzes in the MMLU prompt format that need no world
  // knowledge (arithmetic; a fact stated in the question itself, train facts
  // only), as a real base's web text holds: they teach the base to bind an
  // answer to its letter. Documents in the pretraining mixture; 0 = none.
  int mc_generic = 0;
  // Letter-subset quizzes: the fact half of mc_generic with only 1, 2 or 3 of the
  // four options shown (the gold among them, letters kept, in order; a third
  // each). From scratch a small model learns to copy the one letter shown long
  // before it can choose among four (docs/mini-family.md, "Letter binding from
  // scratch"). Documents in the pretraining mixture; 0 = none.
  int mc_subset = 0;
  std::string canonical_text() const;  // stable text of every field (for cache keys)
};

// A training example: loss on `completion` (and on `prompt` when the trainer
// is told to train on prompts, as pretraining does with an empty prompt).
struct Example {
  std::string prompt;
  std::string completion;
};

struct MmluItem {
  std::string subject;  // file stem, e.g. "world_capitals"
  std::string question;
  std::vector<std::string> choices;  // 4
  int answer = 0;
};
struct HellaswagItem {
  std::string context;  // "activity_label: ctx"
  std::vector<std::string> endings;  // 4
  int label = 0;
};
struct TruthfulqaItem {
  std::string question;
  std::vector<std::pair<std::string, int>> mc1, mc2;  // (answer, 1 = true); true answer first in mc1
};
struct Gsm8kItem {
  std::string question, answer;  // answer ends "#### N"
};
struct MathItem {
  std::string problem, solution, answer, type;
  int level = 1;
  std::string unique_id;
};
struct CodeFunction {
  std::string name;         // entry point
  std::string description;  // MBPP-style "Write a function that ..."
  std::string signature;    // "def add_7(x):"
  std::string docstring;    // first docstring line
  std::string body;         // "    return x + 7\n"
  std::vector<std::string> args;    // argument lists as Python source, e.g. "3" or "[1, 2]"
  std::vector<std::string> results; // expected results as Python source
  std::string humaneval_prompt() const;
  std::string humaneval_test() const;
  std::string mbpp_code() const;
  std::vector<std::string> mbpp_tests() const;
};
struct MbppItem {
  int task_id = 0;
  CodeFunction fn;
};

struct SynthData {
  SynthConfig config;
  // evaluation files (test splits) and router/train splits
  std::vector<MmluItem> mmlu_test, mmlu_dev;
  std::vector<HellaswagItem> hellaswag_val;
  std::vector<TruthfulqaItem> truthfulqa;
  // The router's chat-domain items in the other two knowledge formats (MMLU's
  // are mmlu_dev): HellaSwag scenes and TruthfulQA questions on dev and train
  // facts, never test facts; written as hellaswag/hellaswag_train_full.txt.gz
  // and truthfulqa/mc_train.json. No model trains on them.
  std::vector<HellaswagItem> hellaswag_train;
  std::vector<TruthfulqaItem> truthfulqa_train;
  // MATH-format train problems (the math expert's fine-tune set), written as
  // math/MATH_train.jsonl for the router's math domain; the code domain's
  // HumanEval-format prompts come from the MBPP train functions (ids 601..),
  // written as humaneval/HumanEval_train.jsonl.gz.
  std::vector<MathItem> math_train;
  std::vector<Gsm8kItem> gsm8k_test, gsm8k_train;
  std::vector<MathItem> math_test;
  std::vector<CodeFunction> humaneval;
  std::vector<MbppItem> mbpp;  // task ids 1..10 prompt, 11.. test, 511.. validation, 601.. train
  // training corpora
  std::vector<std::string> pretrain;            // raw documents (all domains)
  std::vector<Example> chat, math, code;        // fine-tune examples per expert
  // Pieces the tokenizer keeps whole ("\u2581" = space mark): the world's
  // names and attribute values after a space (a real tokenizer has whole-word
  // pieces for frequent names), and the numbers 0..math_max with and without
  // a space before them (as tokenizers that keep short numbers whole), so a
  // number is copied and looked up as one token.
  std::vector<std::string> tokenizer_pieces;
};

SynthData generate(const SynthConfig& cfg);

// Writes the benchmark files under `data_dir` (mmlu/, hellaswag/, truthfulqa/,
// gsm8k/, math/, humaneval/, mbpp/; with the router's train splits
// hellaswag/hellaswag_train_full.txt.gz, truthfulqa/mc_train.json,
// math/MATH_train.jsonl and humaneval/HumanEval_train.jsonl.gz) and the
// corpora under data_dir/corpus/.
void write_benchmark_files(const SynthData& d, const std::string& data_dir);

// The prompts the fine-tune data uses; they are the lm-evaluation-harness
// templates named in PROTOCOLS.md, the ones tasks/ evaluates with.
// shown[i] false drops option line i (letters kept; mc_subset); nullptr shows all four.
std::string mmlu_prompt(const MmluItem& it, const bool* shown = nullptr);
std::string truthfulqa_question_prompt(const std::string& q);  // "Q: q\nA:" (no primer)
// (GSM8K and MATH: the tasks' own gsm8k_prompt / math_prompt.)
std::string mbpp_prompt(const MbppItem& it);

// gzip of `data` (zlib, deterministic header: no name, mtime 0).
std::string gzip_bytes(const std::string& data);

}  // namespace bm::synth
