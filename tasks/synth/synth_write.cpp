// Writes SynthData in the real benchmarks' file formats (shared/data/README.md).
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/synth/synth.hpp"
#include "harness/core/strings.hpp"

namespace bm::synth {
namespace {

using ojson = nlohmann::ordered_json;

using bm::csv_field;

void write_mmlu(const std::vector<MmluItem>& items, const std::string& dir, const std::string& suffix) {
  make_dirs(dir);
  std::map<std::string, std::string> files;
  for (auto& it : items) {
    std::string& f = files[it.subject];
    if (f.empty()) f = "question,choice0,choice1,choice2,choice3,answer\n";
    f += csv_field(it.question);
    for (auto& c : it.choices) f += "," + csv_field(c);
    f += "," + std::to_string(it.answer) + "\n";
  }
  for (auto& [subject, text] : files) write_file_atomic(dir + "/" + subject + suffix, text);
}

std::string jsonl(const std::vector<ojson>& rows) {
  std::string s;
  for (auto& r : rows) s += r.dump() + "\n";
  return s;
}

}  // namespace

std::string gzip_bytes(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("gzip", "deflateInit2 failed");
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) fail("gzip", "deflate did not finish");
  out.resize(zs.total_out);
  return out;
}

void write_benchmark_files(const SynthData& d, const std::string& dir) {
  write_mmlu(d.mmlu_test, dir + "/mmlu/test", "_test.csv");
  write_mmlu(d.mmlu_dev, dir + "/mmlu/dev", "_dev.csv");

  make_dirs(dir + "/hellaswag");
  auto hellaswag = [](const std::vector<HellaswagItem>& v) {
    std::string hs;
    for (auto& it : v) {
      hs += it.context + "\n" + std::to_string(it.label) + "\n";
      for (auto& e : it.endings) hs += e + "\n";
    }
    return gzip_bytes(hs);
  };
  write_file_atomic(dir + "/hellaswag/hellaswag_val_full.txt.gz", hellaswag(d.hellaswag_val));
  write_file_atomic(dir + "/hellaswag/hellaswag_train_full.txt.gz", hellaswag(d.hellaswag_train));

  make_dirs(dir + "/truthfulqa");
  auto truthfulqa = [](const std::vector<TruthfulqaItem>& v) {
    ojson tq = ojson::array();
    for (auto& it : v) {
      ojson o;
      o["question"] = it.question;
      o["mc1_targets"] = ojson::object();
      for (auto& [a, val] : it.mc1) o["mc1_targets"][a] = val;
      o["mc2_targets"] = ojson::object();
      for (auto& [a, val] : it.mc2) o["mc2_targets"][a] = val;
      tq.push_back(o);
    }
    return tq.dump(2) + "\n";
  };
  write_file_atomic(dir + "/truthfulqa/mc_task.json", truthfulqa(d.truthfulqa));
  write_file_atomic(dir + "/truthfulqa/mc_train.json", truthfulqa(d.truthfulqa_train));

  make_dirs(dir + "/gsm8k");
  auto gsm = [](const std::vector<Gsm8kItem>& v) {
    std::vector<ojson> rows;
    for (auto& g : v) rows.push_back(ojson{{"question", g.question}, {"answer", g.answer}});
    return jsonl(rows);
  };
  write_file_atomic(dir + "/gsm8k/test.jsonl", gsm(d.gsm8k_test));
  write_file_atomic(dir + "/gsm8k/train.jsonl", gsm(d.gsm8k_train));

  make_dirs(dir + "/math");
  std::vector<ojson> full, m500, mtrain;
  for (auto& m : d.math_test) {
    full.push_back(ojson{{"unique_id", m.unique_id}, {"problem", m.problem}, {"level", "Level " + std::to_string(m.level)},
                         {"type", m.type}, {"solution", m.solution}});
    m500.push_back(ojson{{"problem", m.problem}, {"solution", m.solution}, {"answer", m.answer}, {"subject", m.type},
                         {"level", m.level}, {"unique_id", m.unique_id}});
  }
  for (size_t i = 0; i < d.math_train.size(); ++i) {
    auto& m = d.math_train[i];
    mtrain.push_back(ojson{{"unique_id", "train/" + std::string(m.type == "Algebra" ? "algebra" : "prealgebra") + "/" +
                                             std::to_string(i) + ".json"},
                           {"problem", m.problem}, {"level", "Level " + std::to_string(m.level)}, {"type", m.type},
                           {"solution", m.solution}});
  }
  write_file_atomic(dir + "/math/MATH_test.jsonl", jsonl(full));
  write_file_atomic(dir + "/math/math500_test.jsonl", jsonl(m500));
  write_file_atomic(dir + "/math/MATH_train.jsonl", jsonl(mtrain));

  make_dirs(dir + "/humaneval");
  auto humaneval = [](const std::vector<const CodeFunction*>& fs, const std::string& prefix) {
    std::vector<ojson> he;
    for (size_t i = 0; i < fs.size(); ++i) {
      auto& f = *fs[i];
      he.push_back(ojson{{"task_id", prefix + std::to_string(i)}, {"prompt", f.humaneval_prompt()},
                         {"entry_point", f.name}, {"canonical_solution", f.body}, {"test", f.humaneval_test()}});
    }
    return gzip_bytes(jsonl(he));
  };
  std::vector<const CodeFunction*> he_test, he_train;
  for (auto& f : d.humaneval) he_test.push_back(&f);
  for (auto& m : d.mbpp)
    if (m.task_id >= 601) he_train.push_back(&m.fn);
  write_file_atomic(dir + "/humaneval/HumanEval.jsonl.gz", humaneval(he_test, "HumanEval/"));
  write_file_atomic(dir + "/humaneval/HumanEval_train.jsonl.gz", humaneval(he_train, "HumanEval-train/"));

  make_dirs(dir + "/mbpp");
  std::vector<ojson> mb;
  for (auto& it : d.mbpp)
    mb.push_back(ojson{{"text", it.fn.description}, {"code", it.fn.mbpp_code()}, {"task_id", it.task_id},
                       {"test_setup_code", ""}, {"test_list", it.fn.mbpp_tests()},
                       {"challenge_test_list", ojson::array()}});
  write_file_atomic(dir + "/mbpp/mbpp.jsonl", jsonl(mb));

  make_dirs(dir + "/corpus");
  std::vector<ojson> pre;
  for (auto& t : d.pretrain) pre.push_back(ojson{{"text", t}});
  write_file_atomic(dir + "/corpus/pretrain.jsonl", jsonl(pre));
  auto ex = [](const std::vector<Example>& v) {
    std::vector<ojson> rows;
    for (auto& e : v) rows.push_back(ojson{{"prompt", e.prompt}, {"completion", e.completion}});
    return jsonl(rows);
  };
  write_file_atomic(dir + "/corpus/chat.jsonl", ex(d.chat));
  write_file_atomic(dir + "/corpus/math.jsonl", ex(d.math));
  write_file_atomic(dir + "/corpus/code.jsonl", ex(d.code));
  write_file_atomic(dir + "/corpus/generator.txt", d.config.canonical_text() + "\n");
}

}  // namespace bm::synth
