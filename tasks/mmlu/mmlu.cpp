#include "tasks/mmlu/mmlu.hpp"

#include <dirent.h>

#include <algorithm>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "tasks/common/io.hpp"
#include "tasks/common/scoring.hpp"
#include "tasks/common/templates.hpp"

namespace bm {

static const char* kMmluSource = "hendrycks/test data.tar or HF cais/mmlu, 57 per-subject CSVs";

// The 57 subjects with the sha256 of their dev CSV (the router's chat prompts)
// and test CSV, as fetched from one pinned copy: <home>/mmlu/<split>/<subject>_<split>.csv.
static const char* kMmluHome =
    "https://raw.githubusercontent.com/HaeChan0305/MLILAB-FedLLM/d92730e8bacd7b3a61e551e015e40588e10234b4/data/";
struct MmluFiles {
  const char* subject;
  const char* dev_sha256;
  const char* test_sha256;
};
static const MmluFiles kMmluFiles[] = {
    {"abstract_algebra", "f5bc2f1c0e4098ddba357af2b02919269b1a0bbab9e7c11b31c1c20da36a3263",
     "afdfc6f71eb42297a51f53bd221429671a4065a6425bd7631acb84fef011bfd4"},
    {"anatomy", "44f3842ff1451edabb6356feb452e7fa36fa60f71b857e1a768b4833f23c167c",
     "b27ce42f40482ba735cf0de8e8bbba3382d506c099d8483c55e9cacdac4e3eec"},
    {"astronomy", "0a6f1573c324bcef3684933833f273b12f1b22c7a05eefc3bb5b2e38d8eaa034",
     "1008ecdf7f88a336001b04f739f3fcfff72b3e15fb746880ace2d05f0002c957"},
    {"business_ethics", "27987aed70d9550924d6af037c38597bfd67a4fe9513814cac0d052ab9a8e048",
     "7ce6063b0ed2ba08ac51cc94be1708ce91aeecd17f71cabbb2f86b4e80f3876a"},
    {"clinical_knowledge", "f2fb6824881a33ebaafe79d4c0ce6a930807d8eafe4cb2beb44132af55e2e1ea",
     "9ba57061f15ae7263a12eeb413b73d876038e0ce21734ffce411e1ae22662737"},
    {"college_biology", "450fe9d4b89b9e8909c45276e284f8ebaa6ec158046d1e0e0ad60585a6231bd5",
     "872bae5fe76cecb083603a7ba95adc436a8e345f50c5ee232cc8bfa9f9f56713"},
    {"college_chemistry", "94d6391dc090c327add1fb351de67876be8a530ae0b53b019233a5992940e5f5",
     "6335fe0f7da7a3ec76a9067869445253111080261df1c560a2527df01f34ae67"},
    {"college_computer_science", "3c5cf94f26d6bfa8c19df7df3214032f95d29139f6018f03d99f92f6db637d52",
     "f06e071452389e4a9f0aa7c5bc07401b282ffd659f9ec08c2d301b1fca471024"},
    {"college_mathematics", "acc7b15a61aa4a069237a7841db7154eef6baf707a49e9c8f39fcf4735aaf459",
     "2929eb3851fa6f37de8188f0a7fa817bec44fb5f5a04efa06f89ea272eae2f0b"},
    {"college_medicine", "bb192ae79ca686b5f383ef49b3a196f0531e269f0b5743429198b1766741b4de",
     "65876236acf78e813e62b78cdc2217c2651785324b8c51148aaffa6d89436d0d"},
    {"college_physics", "9918560ec781b0fb0aaa46d165b899f03bd5d933c24106ed7cf8cd4543a775f2",
     "3f67202a7a62da0f0ab3028e0a0cf26a3cffc041283044f51f3e058258eab281"},
    {"computer_security", "029054135a2122654866880966bb9c81b16b1301caae5a1d18092093b223caa7",
     "f4b8b8f107144acd0c2b343553986c161a759cd459706cb72f9bb72752655162"},
    {"conceptual_physics", "bac7a74663e5f892418034692895176873f0a6560cd2512c71da6994c7437337",
     "7186a0cdcd18dff2183dbd26d44f2d59d01f42687092e1229088735d508c06e1"},
    {"econometrics", "77980477843f293d2cca9d9d05f2c4d46b5d9e31393a6456378a082f23d74847",
     "13f21181bb3a26bfd290284ab80850f9c1e1ba90f00df6f17112b8c68e934cee"},
    {"electrical_engineering", "a7283d58a362697323fb49e80bbb047004596c44e21aad2b5afa66e8081b9760",
     "d78bba02efa107c61a82f2f82ee93e99366f5626fdf772a03eb3b749073cd1c1"},
    {"elementary_mathematics", "ca4a3213aa3171042ee6b428600bc72e1d7d07e3026ed2ef12e96254916bba48",
     "701d8bbc120fd210a309f5e43c9cbfca8e1f01f6b9a26f43f669f0d29acc45ef"},
    {"formal_logic", "9e8985f49563f9817a76a715358c501fb8c263ade6a7c1af47e1f90f1dd11513",
     "c72df82993166fc1c9b3f145964b1b4791ce512c0d3f22919e9b46aaea17ef4b"},
    {"global_facts", "6b3da0cce9ff48e7357783ad7390c488eb07bc26d00a3ceb42c81e2cd2e671b9",
     "b80c9b31bc56727ebb3f1f980fbf40dbbd48565f609d1be9642ebe10a1c747a2"},
    {"high_school_biology", "18b65297f30fb31daddde1f69f07aabdbd9013830436888f9c9b410ac2153aa1",
     "4ffe58996b33947fae8f374124c20f95560b773cbd3c9cafea0a3e90bcf4140b"},
    {"high_school_chemistry", "359ab179e37c5c0475636e771877ef16af4d5df27dc0f07f9a5c0783790ba916",
     "42dcc80210a4cd861529e2cbaa04584d1d1cfd32d5515b385343df724d37408f"},
    {"high_school_computer_science", "e012aba074b95dcdf9875ef956e6800da5193ee1afe409dd6e9d71beebb8129d",
     "3865e92ef308c42ad7d653301647c6cd5bfa6d67f20c9fbbdfe14c2c1eb5bbbc"},
    {"high_school_european_history", "8165a942ee996813de76199cc08cdddcee26128e09c99c9ecd014fed8f9a6fc6",
     "696d4b82f27792ac04915a7f6822370b4a42133fcd83c9a13fe5d74aaba37fbb"},
    {"high_school_geography", "55d2bcd20524a0d0c8b39fb9b48aec36adfdb93ca2009271a58cc02d60fc89e3",
     "4c0c06e32b73ec3f5b55bdab2a124b3b9736e888d2edadc6f40d6172052f7507"},
    {"high_school_government_and_politics", "631449be21ebdc3cf14ee6399b0a463c7b3990506ca6a97079e6c1888954be27",
     "a3e20fbcff3bb0bdc613db7b56257c4e72d83d6e04e60db25c84e81d8c70a7d2"},
    {"high_school_macroeconomics", "a8326c37a99fa81631b539cb66823b08c18990a94276f60d1a2c1af78cc21d4d",
     "a06fba67bf6b92e5174d049fdb484df8c6e663586a910e725e195ebf43116b9c"},
    {"high_school_mathematics", "36aa098c79f22f75415dd74c306de1faa07082257ed9fa8fe650111f78b35d74",
     "56b119f139ba07c0e2a9616e60397e3415cdca1532ae217ac6d8fd1bddfc96f7"},
    {"high_school_microeconomics", "023578120d0c4b9e3c317dffcca4552494fbfc9ed1dd4daff3f2e7a4b9ca2573",
     "a6acbf0d864e51540e0c219e433dc0f54a56d8a35255bf294d4de8d09b7ef00d"},
    {"high_school_physics", "fd3f3c1153270806012fbdbf9b5dedde4e63527f1b4a423cdfae521ac405fd4e",
     "e5258c55a5e67a62c26fa0d2564b5263b69d38810e51204c59017789a771e253"},
    {"high_school_psychology", "3a055107cbe9855a68483c2a8f816aada2294a9b1c078365e88c91ed62bec745",
     "c7aabf2ccfee7489bf1494cfa1504a679eb69e27caa7d64bd1e9e63cff5c3fe9"},
    {"high_school_statistics", "7948fd0d32ff30ac414c97928895da40990519c702768eb293d5f01a8d6261f7",
     "c305647bc50d6e049ab0d33e79a3455a964421a54023ba14fa6b3c72e19a8d1d"},
    {"high_school_us_history", "df7936a6c422e655f9f79c432595b87232fef93c3b13e7feb74d2e7060b560b1",
     "cd6c60e147dd70dde6b523c6ca0be07a78f7a1be7492278aa06641bc1f12680e"},
    {"high_school_world_history", "ae90f590e6452acac0b517e13b2ec285ac00004f46094fe68748fee98e496178",
     "cb083c69f1a4efb316ea8645899872d2528d55a7bf7cad1d625fcf369db0e943"},
    {"human_aging", "eaf8402a34af0529feed70d52eb0a4a4c707205609005e8267bdade008ca1728",
     "ce44b96c0d5bb9f0491f34a6b30d8feb2e82092e5f094990a9632b67bf75277b"},
    {"human_sexuality", "0800691d14de81e90be7a949be3bda268731997590bd3d9a5a14b15e88d8cdf8",
     "98af8223edc66de68cfd9dfb18e19a65b94ad1559204f3f239ebb227112732f6"},
    {"international_law", "712493120d7112ca187666ef8ff75886a9dfdae3aeac9b5e6a309d0c6a8c7265",
     "e4fb345f044b54ef01ddda7126b61c328202cf0160e8f27831f082cc63da8ed9"},
    {"jurisprudence", "67bf7563f8b90c6682e716ff1faada4be62be12ec967c8d03c4d7cac99d01158",
     "26780d8e35636af29b00b26b808d43aa466d9c06fa7b27a9b4c753b335883286"},
    {"logical_fallacies", "721672e4daf2ea761545776077c4825d90b2132ed847126fdf9b21f1b594da43",
     "f40e1e6098a69cd8511c009f024c7d7caaad4a2f7cb9501be5a377167a5def60"},
    {"machine_learning", "25b78353edd62f6b4d17fe6e2ea391018c23e61e2a0fe6e8807eb32cea2561af",
     "50d163266dbc8672b8097c32a4765ff4a5e8767ac4a8971e70ddccbd5b817bd3"},
    {"management", "bb5b1bffac34f751762e98ff6185b523202b62f42081f6b13df79b37a445254c",
     "423261b2633e20df5b4febfba4ecc7366917cdbabdb7e3ede4b1be98adf5dce5"},
    {"marketing", "c3ea3899945cb1e49da36c5693fba97bbcea7029a1087843e976a987091b2311",
     "1853316726e9fa72eba8d74a67fc45da9a2c7ed1cb892496359d87426a7f7c8a"},
    {"medical_genetics", "a7cc3670c44f8c09c157476ffe1863b9e8fe1c4113d2fea9bc557b22ecb5f374",
     "b330e63b2e60345285490ff495d5f4aea1981d738cc303c559903ec1c12238c1"},
    {"miscellaneous", "deee26422c1befff224f0da1a587c2a6051252c290e8f6ac40feaed2a7683429",
     "58f67b35c1890985ccdd1c6b4e9a4e8bfd4f8e0e5fadf5726860ae789c65d5e8"},
    {"moral_disputes", "ce86707de1a10887c14abfaedc3daa6a6b19fa5d0216c2fc593cf8dc54c21e56",
     "2f3379380a469cbc2ed5d03372bae01306a19c65d053cc638435b92808b439f2"},
    {"moral_scenarios", "d6c0dcd5f9fe19c5bbb8de7d3218428c587b96f932498a44820a21d55c2917ed",
     "1776d1bf56388452ef80112bb1b5e94a6017abcb79b11540927e98f92cee8fba"},
    {"nutrition", "da8a99b9a9ecdc79b880c7ebaa59b30eb2f5bb043336932f7b0fb3cecaf3b8ae",
     "acb668e8064655eab8869d8cc65ebc40af39acfe6eb40e0e1a83dfb87bffdc2a"},
    {"philosophy", "42d9b8146f5dda534ad75bac24defcc9e41d61957cdfd9060c79d837274eccdd",
     "74576271e2f9e3a01b4c437209323e833fb09a4e3a79217b16caa65e94ee8ba0"},
    {"prehistory", "e7efa2839f8151b0de1284c21023ae9f7de8589ac5f3a6e44225d46cc5d07e79",
     "5ff0349229f3bddf399ec0bf2c28c46a32d18997dd4bd93436702ba8bfccba78"},
    {"professional_accounting", "8a27c1e2ca406f477d7755b30fea6e4affb9ec64285c57b47aa847812ce7b79d",
     "728c6030e2e2e882a73305279b149b34b44c8f0203bdf6c5c75d48602bfb883a"},
    {"professional_law", "0814eebe7943bfb5aa927a494b20f029a2383499fa2250a14e9b19eb6dc77199",
     "59884277f245b8332d6d02ba16fdefd7ca5bdc7ed51dca5f19147094f087c28d"},
    {"professional_medicine", "510bd154f87714cfc9b09fef10bda4789237ddf703198c476dac684b491f2382",
     "3490aa679090fdfd94f1a887219f2a85bb4028f4d0e6d49d6242fb9a99b846a1"},
    {"professional_psychology", "e1db35cdee39b0266295a5f960c6eeaa6600357b03b0d842df3d0ca5292b2b1a",
     "5a3847f67470bff48c551dc80ac2a272a4378311d988ba5cad6325ba5d94e779"},
    {"public_relations", "8d9a821e0ea6a03da946b96e3031c999e52f0baaf51f1fa2fbb05924971e402f",
     "6f12b33facda9e0ab191debe3fb638d86c61c66a6205ed333b0890815f53b9be"},
    {"security_studies", "128a6ccb816854ce8973888e43cefb3b21c106ba425fa93bd80dee4590e9ff16",
     "df86d642637dcada2f62ccb793739d0d6384552616c11bb3941d201cf3ab4ef1"},
    {"sociology", "6221f18fd45181970c705606c7692e7218fc1aee33970fd55cd432ddfd6fe320",
     "7ee6baaa0082e04a03a64a722ab50b495edb49c26306e850a49e26b1a4edc88d"},
    {"us_foreign_policy", "e75e2e201b5eeb949de35640c58f107bbeba4e7d53acf88688eec27b1e2b69c2",
     "5fbff75d8a6f1bfa1e4ca696a2db9ffbf11e3b97809ab97c00c813b96bd27e08"},
    {"virology", "a32c63aaefafbf4227326b9701c986d40c979fb2169b3d67be7ac1f7758a8357",
     "cfb95d550d800b600a1d802bdb4ab4b5018b168d74f87af5fdbea5b623d279c1"},
    {"world_religions", "13404d8d076006e6c4aa13cd05a7ff4691be0e59b7630bdf7e9826244464ecdd",
     "203c71d35b4d667a4010b032ad57cc75a561209c94e2235eb5c549310bf23789"},
};

std::vector<MmluQuestion> load_mmlu_csv(const std::string& path, const std::string& subject) {
  auto rows = parse_csv(read_text_file(path), path);
  std::vector<MmluQuestion> out;
  bool header = !rows.empty() && rows[0].fields.size() == 6 && rows[0].fields[0] == "question" &&
                rows[0].fields[5] == "answer";
  for (size_t r = header ? 1 : 0; r < rows.size(); ++r) {
    const auto& f = rows[r].fields;
    std::string where = path + ":" + std::to_string(rows[r].line);
    if (f.size() != 6) fail(where, "malformed MMLU row: expected 6 fields (question, 4 choices, answer), got " +
                                       std::to_string(f.size()) + "; re-fetch the file");
    MmluQuestion q;
    q.subject = subject;
    q.row = static_cast<int64_t>(out.size());
    q.question = f[0];
    q.choices.assign(f.begin() + 1, f.begin() + 5);
    std::string a = trim(f[5]);
    if (a.size() == 1 && a[0] >= 'A' && a[0] <= 'D')
      q.answer = a[0] - 'A';
    else if (a.size() == 1 && a[0] >= '0' && a[0] <= '3')
      q.answer = a[0] - '0';
    else
      fail(where, "malformed MMLU answer '" + a + "' (expected A-D or 0-3); re-fetch the file");
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<MmluQuestion> load_mmlu_dir(const std::string& dir, const std::string& suffix) {
  DIR* d = opendir(dir.c_str());
  if (!d) fail(dir, std::string("missing MMLU data directory (from ") + kMmluSource + "); " + kDataFetchHint);
  std::vector<std::string> files;
  while (auto* e = readdir(d)) {
    std::string n = e->d_name;
    if (ends_with(n, suffix) && n.size() > suffix.size()) files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  if (files.empty()) fail(dir, "no MMLU *" + suffix + " files; " + kDataFetchHint);
  std::vector<MmluQuestion> all;
  for (const auto& f : files) {
    auto qs = load_mmlu_csv(dir + "/" + f, f.substr(0, f.size() - suffix.size()));
    all.insert(all.end(), qs.begin(), qs.end());
  }
  return all;
}

std::string mmlu_context(const MmluQuestion& q) {
  std::string s = "The following are multiple choice questions (with answers) about " + replace_all(q.subject, "_", " ") +
                  ".\n\n" + trim(q.question);
  const char* L = "ABCD";
  for (int i = 0; i < 4; ++i) s += std::string("\n") + L[i] + ". " + q.choices[i];
  return s + "\nAnswer:";
}

namespace {
class MmluTask : public Task {
 public:
  std::string name() const override { return "mmlu"; }
  std::string label() const override { return "MMLU"; }
  std::string domain() const override { return "chat"; }
  // The router's chat anchor: the dev split (5 per subject), required.
  std::vector<std::string> router_prompts(const std::string& data_dir) const override {
    std::string dir = data_dir + "/mmlu/dev";
    auto questions = load_mmlu_dir(dir, "_dev.csv");
    if (questions.empty()) fail(dir, "no *_dev.csv files for the router's chat domain; fetch the MMLU data");
    std::vector<std::string> out;
    for (const auto& q : questions) out.push_back(mmlu_context(q));
    return out;
  }
  std::string version() const override { return "mmlu-1"; }
  std::vector<std::string> metric_names() const override { return {"acc"}; }
  std::string headline_metric() const override { return "acc"; }
  std::string headline_note() const override { return "acc averaged over every question evaluated (weighted by subject size; the full test set has 14,042)"; }
  std::vector<std::string> templates() const override { return with_chat_formats({"lm-eval"}); }
  void load(const std::string& data_dir) override {
    dir_ = require_data_file(data_dir, "mmlu/test", "MMLU", kMmluSource);
    qs_ = load_mmlu_dir(dir_);
    files_.clear();
    std::vector<std::string> seen;
    for (const auto& q : qs_)
      if (seen.empty() || seen.back() != q.subject) seen.push_back(q.subject);
    for (const auto& s : seen) files_.push_back(dir_ + "/" + s + "_test.csv");
  }
  std::vector<std::string> data_files() const override { return files_; }
  std::vector<DataSource> data_sources() const override {
    std::vector<DataSource> out;
    for (const char* split : {"dev", "test"})
      for (const auto& f : kMmluFiles) {
        std::string path = std::string("mmlu/") + split + "/" + f.subject + "_" + split + ".csv";
        out.push_back({path, split == std::string("dev") ? f.dev_sha256 : f.test_sha256, kMmluHome + path});
      }
    return out;
  }
  std::string data_format() const override { return "per-subject CSV"; }
  size_t size() const override { return qs_.size(); }
  std::string item_id(size_t i) const override { return qs_[i].subject + "/" + std::to_string(qs_[i].row); }
  std::vector<Sample> run(LanguageModel& lm, const std::vector<size_t>& idx, const RunContext& ctx) const override {
    std::vector<McItem> items;
    for (size_t i : idx) {
      McItem m;
      m.id = item_id(i);
      m.context = mmlu_context(qs_[i]);
      if (is_chat_format(ctx.template_name)) m.context = chat_prompt(ctx.template_name, m.context);
      m.choices = {"A", "B", "C", "D"};
      m.gold = qs_[i].answer;
      items.push_back(std::move(m));
    }
    auto ll = score_choices(lm, items);
    std::vector<Sample> out;
    for (size_t k = 0; k < items.size(); ++k) {
      out.push_back(mc_sample("mmlu", items[k], ll[k], false));
      out.back().extra["subject"] = qs_[idx[k]].subject;
    }
    return out;
  }

 private:
  std::string dir_;
  std::vector<MmluQuestion> qs_;
  std::vector<std::string> files_;
};
}  // namespace

std::unique_ptr<Task> make_mmlu_task() { return std::make_unique<MmluTask>(); }

}  // namespace bm
