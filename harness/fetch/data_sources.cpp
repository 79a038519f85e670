// The data table of `bitmerge data fetch | list`: every benchmark file as its
// Task declares it (Task::data_sources(), tasks/<name>/: path, sha256, public
// home), grouped by the top folder of its path, then the model families'
// tokenizers, which belong to no benchmark. Tests check the table against
// shared/data/SHA256SUMS. url "" = derived file: fetch it with --mirror.
#include "harness/fetch/fetch.hpp"
#include "tasks/common/task.hpp"

namespace bm {

const std::vector<DataFile>& data_files() {
  static const std::vector<DataFile> table = [] {
    std::vector<DataFile> t;
    for (auto& s : all_data_sources()) t.push_back({s.path.substr(0, s.path.find('/')), s.path, s.sha256, s.url});
    const DataFile tokenizers[] = {
      {"tokenizers", "tokenizers/llama2/tokenizer.model",
       "9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347",
       "https://raw.githubusercontent.com/karpathy/llama2.c/350e04fe35433e6d2941dce5a1f53308f87058eb/tokenizer.model"},
      {"tokenizers", "tokenizers/mistral-7b-v0.1/tokenizer.model",
       "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
       "https://raw.githubusercontent.com/mistralai/mistral-common/bc022b91aa1c3b1fb771ac70931ae0009dbf9bad/src/mistral_common/data/tokenizer.model.v1"}};
    for (const auto& f : tokenizers) t.push_back(f);
    return t;
  }();
  return table;
}

}  // namespace bm
