// The replica zoo (issue 15): tests/zoo/make_zoo.py writes the paper's twelve
// checkpoints with the layouts they really ship in (shards, index files,
// .bin-only fp32, mixed dtypes, vocab 32001 + added_tokens.json,
// tokenizer.json only, pickled inv_freq buffers, sampling
// generation_config.json) at tiny shapes. Every replica goes through
// `bitmerge inspect`, `merge` and `eval --limit 2`, and every quirk has a test
// of the decision docs/checkpoints.md records.
#define ZOO_WORK "zoo_test"
#include "tests/zoo/zoo_util.hpp"

// The script writes each repo's layout as the hub lists it.
TEST_F(Zoo, EveryRepoShipsItsLayout) {
  for (auto& [id, base] : kRepos) EXPECT_TRUE(has(root_, local(id) + "/config.json")) << id;
  // MAmmoTH-7B: 3 fp32 .bin shards, no safetensors, [PAD] = 32000, config pad_token_id 0.
  const std::string m7 = dir("MAmmoTH-7B");
  EXPECT_EQ(count_ext(m7, ".bin"), 3);
  EXPECT_EQ(count_ext(m7, ".safetensors"), 0);
  EXPECT_TRUE(has(m7, "pytorch_model-00003-of-00003.bin") && has(m7, "pytorch_model.bin.index.json"));
  auto cfg = json::parse(bm::read_text_file(m7 + "/config.json"));
  EXPECT_EQ(cfg["vocab_size"], 32001);
  EXPECT_EQ(cfg["pad_token_id"], 0);
  EXPECT_EQ(cfg["torch_dtype"], "float32");
  EXPECT_EQ(json::parse(bm::read_text_file(m7 + "/added_tokens.json"))["[PAD]"], 32000);
  EXPECT_EQ(count_ext(dir("MAmmoTH-13B"), ".bin"), 6);
  // mrm8488 and emre: .bin only, tokenizer.json only.
  for (const char* n : {"llama-2-coder-7b", "llama-2-13b-code-chat"}) {
    EXPECT_FALSE(has(dir(n), "tokenizer.model")) << n;
    EXPECT_TRUE(has(dir(n), "tokenizer.json")) << n;
    EXPECT_EQ(count_ext(dir(n), ".safetensors"), 0) << n;
  }
  // meta-llama and mistralai: safetensors + .bin, both sharded with indexes.
  EXPECT_EQ(count_ext(dir("Llama-2-13b-hf"), ".safetensors"), 3);
  EXPECT_EQ(count_ext(dir("Llama-2-13b-hf"), ".bin"), 3);
  EXPECT_TRUE(has(dir("Mistral-7B-v0.1"), "model.safetensors.index.json") &&
              has(dir("Mistral-7B-v0.1"), "pytorch_model.bin.index.json"));
  // MAmmoTH2: 3 safetensors only, tokenizer.model only, use_cache false.
  EXPECT_EQ(count_ext(dir("MAmmoTH2-7B"), ".safetensors"), 3);
  EXPECT_EQ(count_ext(dir("MAmmoTH2-7B"), ".bin"), 0);
  EXPECT_FALSE(has(dir("MAmmoTH2-7B"), "tokenizer.json"));
  // Nondzu: a full model, no adapter files.
  EXPECT_FALSE(has(dir("Mistral-7B-codealpaca-lora"), "adapter_config.json"));
  EXPECT_EQ(count_ext(dir("Mistral-7B-codealpaca-lora"), ".safetensors"), 2);
  // Llama-2-chat samples by default.
  auto g = json::parse(bm::read_text_file(dir("Llama-2-7b-chat-hf") + "/generation_config.json"));
  EXPECT_EQ(g["do_sample"], true);
  EXPECT_DOUBLE_EQ(g["temperature"].get<double>(), 0.6);
  // The .bin index lists the pickled buffers.
  auto idx = json::parse(bm::read_text_file(m7 + "/pytorch_model.bin.index.json"));
  EXPECT_TRUE(idx["weight_map"].contains("model.layers.0.self_attn.rotary_emb.inv_freq"));
}

// Every replica opens, matches its config.json, and has exactly its base's
// parameters (buffers dropped), in the stored dtypes.
TEST_F(Zoo, EveryReplicaOpensWithItsBasesTensors) {
  for (auto& [id, base] : kRepos) {
    auto ck = bm::Checkpoint::open(dir(local(id)));
    EXPECT_NO_THROW(ck->validate_against_config()) << id;
    for (auto& n : ck->names()) EXPECT_EQ(n.find("inv_freq"), std::string::npos) << id << " " << n;
    if (!base.empty()) {
      auto b = bm::Checkpoint::open(dir(base));
      std::vector<std::string> a = ck->names(), bn = b->names();
      std::sort(a.begin(), a.end());
      std::sort(bn.begin(), bn.end());
      EXPECT_EQ(a, bn) << id;
    }
  }
  auto m7 = bm::Checkpoint::open(dir("MAmmoTH-7B"));
  EXPECT_EQ(m7->info("model.embed_tokens.weight").dtype, bm::DType::F32);
  EXPECT_EQ(m7->info("lm_head.weight").shape[0], 32001);
  EXPECT_EQ(m7->files().size(), 3u);
  auto coder = bm::Checkpoint::open(dir("llama-2-coder-7b"));
  EXPECT_EQ(coder->info("model.layers.0.self_attn.q_proj.weight").dtype, bm::DType::BF16);
  EXPECT_EQ(coder->info("model.norm.weight").dtype, bm::DType::F32);  // mixed, as shipped
  // safetensors + .bin: the safetensors are read.
  auto l7 = bm::Checkpoint::open(dir("Llama-2-7b-hf"));
  for (auto& f : l7->files()) EXPECT_NE(f.find(".safetensors"), std::string::npos) << f;
}

// .bin-only fp32 experts: every shard is memory-mapped and a tensor is a view
// into its shard's mapping (zero-copy), so a merge touches one tensor at a
// time and never holds all shards in RAM.
TEST_F(Zoo, BinOnlyShardsAreReadAsViewsOnTheMapping) {
  auto ck = bm::Checkpoint::open(dir("MAmmoTH-13B"));
  ASSERT_EQ(ck->files().size(), 6u);
  std::map<std::string, std::string> where;
  auto idx = json::parse(bm::read_text_file(dir("MAmmoTH-13B") + "/pytorch_model.bin.index.json"));
  for (auto& n : ck->names()) {
    auto a = ck->get(n), b = ck->get(n);
    EXPECT_EQ(a.data_ptr(), b.data_ptr()) << n << ": a copy per get() (not a view on the mapping)";
    EXPECT_FALSE(a.storage().resizable()) << n;
  }
  // The values are the file's (oracle: the fp32 weights torch.load reads are
  // compared in the merge test below through task vectors).
  EXPECT_EQ(idx["weight_map"].size(), ck->names().size() + 10u);  // + 10 inv_freq buffers (10 layers)
}



// tokenizer.json-only experts use the base's tokenizer.model: the ids agree
// with HF tokenizers' encoding of the expert's tokenizer.json on the probe
// text (oracle), and a tokenizer.json of another vocabulary is refused.
TEST_F(Zoo, TokenizerJsonOnlyUsesTheBasesModelAfterAnIdCheck) {
  const std::string coder = dir("llama-2-coder-7b"), base = dir("Llama-2-7b-hf");
  std::string note;
  auto tok = bm::Tokenizer::load_for_model_dir(coder, base, &note);
  ASSERT_NE(tok, nullptr);
  EXPECT_NE(note.find(base + "/tokenizer.model"), std::string::npos) << note;
  EXPECT_EQ(bm::Tokenizer::load_for_model_dir(coder, "", nullptr), nullptr);
  const std::string probe = work_ + "/probe.txt";
  bm::write_file_atomic(probe, bm::Tokenizer::probe_text());
  auto hf_ids = [&](const std::string& tokenizer_json, const std::string& text_file) {
    auto r = sh(q(env("BITMERGE_TEST_PYTHON")) + " -c \"import sys,json; from tokenizers import Tokenizer; "
                "t=Tokenizer.from_file(sys.argv[1]); print(json.dumps(t.encode(open(sys.argv[2],encoding='utf-8').read(), "
                "add_special_tokens=False).ids))\" " +
                q(tokenizer_json) + " " + q(text_file));
    EXPECT_EQ(r.rc, 0) << r.out;
    return json::parse(r.out.substr(r.out.find('['))).get<std::vector<int64_t>>();
  };
  auto hf = hf_ids(coder + "/tokenizer.json", probe);
  EXPECT_EQ(tok->encode(bm::Tokenizer::probe_text(), false), hf);
  EXPECT_GT(hf.size(), 30u);
  // Runs of spaces: tokenizer.json's BPE and SentencePiece split "    return"
  // differently ("▁▁▁▁" "return" vs "▁▁▁" "▁return"), for the base's own
  // tokenizer.json as much as the expert's (docs/checkpoints.md): the expert's
  // tokenizer.json is the base's tokenizer, so the base's tokenizer.model serves it.
  const std::string spaces = work_ + "/spaces.txt";
  bm::write_file_atomic(spaces, "def f(x):\n    return x\n        pass");
  EXPECT_EQ(hf_ids(coder + "/tokenizer.json", spaces), hf_ids(base + "/tokenizer.json", spaces));
  // A tokenizer.json whose pieces are numbered differently (two swapped ids).
  const std::string bad = work_ + "/coder-swapped";
  fresh_dir(bad);
  auto j = json::parse(bm::read_text_file(coder + "/tokenizer.json"));
  auto& v = j["model"]["vocab"];
  std::swap(v["▁the"], v["▁and"]);
  bm::write_file_atomic(bad + "/tokenizer.json", j.dump());
  try {
    bm::Tokenizer::load_for_model_dir(bad, base, nullptr);
    ADD_FAILURE() << "swapped ids accepted";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + "/tokenizer.json"), std::string::npos) << e.what();
  }
  // The Mistral tokenizer is another vocabulary than LLaMA-2's.
  EXPECT_THROW(bm::Tokenizer::load_for_model_dir(coder, dir("Mistral-7B-v0.1"), nullptr), bm::Error);
}

// A 32001-row model can generate [PAD] (id 32000): it decodes to nothing
// (special, as lm-eval's skip_special_tokens=True); a tokenizer without that
// added token refuses the id.
TEST_F(Zoo, AddedPadTokenDecodesToNothing) {
  auto tok = bm::Tokenizer::load_from_model_dir(dir("MAmmoTH-7B"));
  auto ids = tok->encode("Hello world, 42", false);
  std::vector<int64_t> with_pad = ids;
  with_pad.insert(with_pad.begin() + 2, 32000);
  with_pad.push_back(32000);
  EXPECT_EQ(tok->decode(with_pad), tok->decode(ids));
  EXPECT_THROW(bm::Tokenizer::load_from_model_dir(dir("Llama-2-7b-hf"))->decode({32000}), bm::Error);
}

// 32001-row expert against the 32000-row base: the 32000 common rows are
// merged, row 32000 is dropped, the merged model has the base's vocab and
// tokenizer; the decision is in the provenance. Task arithmetic with one
// expert at lambda 1 gives back the expert's rows (oracle: the expert itself).
TEST_F(Zoo, VocabMismatchMergesCommonRowsAndDropsPad) {
  const std::string out = work_ + "/ta-math";
  auto r = sh(bin() + " merge --method task_arithmetic --param lambda=1 --base " + q(dir("Llama-2-7b-hf")) +
              " --experts math=" + q(dir("MAmmoTH-7B")) + " --output " + q(out));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto m = bm::Checkpoint::open(out);
  auto e = bm::Checkpoint::open(dir("MAmmoTH-7B"));
  EXPECT_EQ(m->config().vocab_size, 32000);
  for (const char* n : {"model.embed_tokens.weight", "lm_head.weight", "model.layers.7.mlp.down_proj.weight"}) {
    auto got = m->get(n).to(torch::kFloat32);
    auto want = e->get(n).narrow(0, 0, got.size(0)).to(torch::kFloat16).to(torch::kFloat32);
    EXPECT_EQ(got.size(0), n[0] == 'm' && std::string(n).find("down") != std::string::npos ? 16 : 32000) << n;
    EXPECT_TRUE(torch::allclose(got, want, 1e-3, 1e-3)) << n << " max diff " << (got - want).abs().max().item<float>();
  }
  EXPECT_EQ(bm::read_text_file(out + "/tokenizer.model"), bm::read_text_file(dir("Llama-2-7b-hf") + "/tokenizer.model"));
  EXPECT_FALSE(has(out, "added_tokens.json"));
  auto prov = json::parse(bm::read_text_file(out + "/bitmerge_provenance.json"));
  std::string notes = prov["notes"].dump();
  EXPECT_NE(notes.find("32000..32000"), std::string::npos) << notes;
  EXPECT_NE(notes.find("dropped"), std::string::npos) << notes;
}

// Every family merges (TIES over its three experts, 1bit-Merging routed to
// the code expert) and the merged models evaluate.
TEST_F(Zoo, EveryFamilyMergesAndEvaluates) {
  struct Fam {
    std::string base, chat, math, code;
  };
  std::vector<Fam> fams = {{"Llama-2-7b-hf", "Llama-2-7b-chat-hf", "MAmmoTH-7B", "llama-2-coder-7b"},
                           {"Llama-2-13b-hf", "Llama-2-13b-chat-hf", "MAmmoTH-13B", "llama-2-13b-code-chat"},
                           {"Mistral-7B-v0.1", "Mistral-7B-Instruct-v0.1", "MAmmoTH2-7B", "Mistral-7B-codealpaca-lora"}};
  for (auto& f : fams) {
    const std::string experts = " --experts chat=" + q(dir(f.chat)) + ",math=" + q(dir(f.math)) + ",code=" + q(dir(f.code));
    // TIES on each family; 1bit-Merging routed to the code expert on LLaMA-2-7B (tokenizer.json only, bf16 + fp32).
    std::vector<std::string> methods = {"ties"};
    if (f.base == "Llama-2-7b-hf") methods.push_back("onebit");
    for (const std::string& method : methods) {
      const std::string out = work_ + "/" + method + "-" + f.base;
      std::string extra = method == "onebit" ? " --route code --compress chat=linear,math=linear,code=linear" : " --param density=0.5";
      auto r = sh(bin() + " merge --method " + method + " --base " + q(dir(f.base)) + experts + extra + " --output " + q(out));
      ASSERT_EQ(r.rc, 0) << f.base << " " << method << "\n" << r.out;
      auto m = bm::Checkpoint::open(out);
      EXPECT_NO_THROW(m->validate_against_config());
      EXPECT_EQ(m->config().vocab_size, 32000);
      auto ev = sh(bin() + " eval --model " + q(out) + " --tasks mmlu,gsm8k --limit 2 --max-new-tokens 6 --output " +
                   q(out + ".json"));
      EXPECT_EQ(ev.rc, 0) << ev.out;
    }
  }
}

// An expert of another base (13B math against the 7B base): one-line error
// naming the expert's config.json, nothing written.
TEST_F(Zoo, ExpertOfAnotherBaseIsRefused) {
  const std::string out = work_ + "/wrong-base";
  auto r = sh(bin() + " merge --method ties --base " + q(dir("Llama-2-7b-hf")) + " --experts math=" +
              q(dir("MAmmoTH-13B")) + " --output " + q(out));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("MAmmoTH-13B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("same base model"), std::string::npos) << r.out;
  EXPECT_FALSE(bm::file_exists(out));
}

// generation_config.json (Llama-2-chat: do_sample, temperature 0.6) never
// changes greedy evaluation: the same samples with it, without it, and with
// an extreme one.
TEST_F(Zoo, GenerationConfigNeverChangesGreedyEval) {
  const std::string src = dir("Llama-2-7b-chat-hf");
  auto variant = [&](const std::string& tag, const std::string* gen) {
    std::string d = work_ + "/gencfg-" + tag;
    fresh_dir(d);
    for (auto& e : bm::list_dir(src))
      if (e != "generation_config.json") EXPECT_EQ(::symlink((src + "/" + e).c_str(), (d + "/" + e).c_str()), 0) << e;
    if (gen) bm::write_file_atomic(d + "/generation_config.json", *gen);
    return d;
  };
  std::string hot = R"({"do_sample": true, "temperature": 5.0, "top_k": 3, "top_p": 0.1, "max_new_tokens": 1,
                        "repetition_penalty": 3.0, "num_beams": 4, "eos_token_id": 13})";
  std::vector<std::string> dirs = {src, variant("none", nullptr), variant("hot", &hot)};
  std::vector<std::string> samples;
  for (auto& d : dirs) {
    const std::string out = d + ".eval.json";
    auto r = sh(bin() + " eval --model " + q(d) + " --tasks gsm8k --limit 2 --max-new-tokens 12 --output " + q(out) +
                " --samples " + q(out + ".jsonl"));
    ASSERT_EQ(r.rc, 0) << r.out;
    samples.push_back(bm::read_text_file(out + ".jsonl"));
  }
  ASSERT_FALSE(samples[0].empty());
  EXPECT_EQ(samples[0], samples[1]);
  EXPECT_EQ(samples[0], samples[2]);
}

// Nondzu's code expert is a full model whatever its name says: the family
// config says so, the loader reads it as one, its task vector carries the
// Instruct delta (tuned from Instruct); format = "lora" on it is an error that
// names the fix, and real PEFT adapters keep their path (tests/io).
TEST_F(Zoo, NondzuIsAFullModelCarryingTheInstructDelta) {
  bm::runner::Family f = bm::runner::load_family(env("BITMERGE_SOURCE_DIR") + "/configs/families/mistral-7b.toml");
  ASSERT_NE(f.expert("code"), nullptr);
  EXPECT_EQ(f.expert("code")->format, "hf");
  EXPECT_EQ(f.expert("code")->local_name, "Mistral-7B-codealpaca-lora");
  ::setenv("BITMERGE_MODELS_DIR", root_.c_str(), 1);
  EXPECT_NO_THROW(bm::runner::require_model_present(f, *f.expert("code"), "/nonexistent"));
  bm::runner::ModelRef as_lora = *f.expert("code");
  as_lora.format = "lora";
  try {
    bm::runner::require_model_present(f, as_lora, "/nonexistent");
    ADD_FAILURE() << "format lora accepted on a full model";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("set format = \"hf\""), std::string::npos) << e.what();
  }
  ::unsetenv("BITMERGE_MODELS_DIR");
  auto base = bm::Checkpoint::open(dir("Mistral-7B-v0.1"));
  auto inst = bm::Checkpoint::open(dir("Mistral-7B-Instruct-v0.1"));
  auto code = bm::Checkpoint::open(dir("Mistral-7B-codealpaca-lora"));
  auto math = bm::Checkpoint::open(dir("MAmmoTH2-7B"));
  const std::string n = "model.layers.0.mlp.up_proj.weight";
  auto b = base->get(n).to(torch::kFloat32);
  auto d_inst = (inst->get(n).to(torch::kFloat32) - b).flatten();
  auto d_code = (code->get(n).to(torch::kFloat32) - b).flatten();
  auto d_math = (math->get(n).to(torch::kFloat32) - b).flatten();
  auto cos = [](const torch::Tensor& x, const torch::Tensor& y) {
    return (x.dot(y) / (x.norm() * y.norm())).item<double>();
  };
  EXPECT_GT(cos(d_code, d_inst), 0.5);          // code's task vector includes the Instruct delta
  EXPECT_LT(std::abs(cos(d_math, d_inst)), 0.2);  // an expert tuned from the base does not
}

// The decision for each quirk, as results.json's provenance records it.
TEST_F(Zoo, DecisionsAreRecordedPerCheckpoint) {
  auto m7 = bm::checkpoint_decisions(dir("MAmmoTH-7B"), dir("Llama-2-7b-hf"));
  EXPECT_TRUE(contains(m7, ".bin only (3 shards)")) << joined(m7);
  EXPECT_TRUE(contains(m7, "float32 x 75")) << joined(m7);
  EXPECT_TRUE(contains(m7, "8 pickled rotary_emb.inv_freq")) << joined(m7);
  EXPECT_TRUE(contains(m7, "vocab 32001 vs the base's 32000 (added_tokens.json: [PAD] = 32000)")) << joined(m7);
  EXPECT_TRUE(contains(m7, "rows 32000..32000 are dropped")) << joined(m7);
  auto coder = bm::checkpoint_decisions(dir("llama-2-coder-7b"), dir("Llama-2-7b-hf"));
  EXPECT_TRUE(contains(coder, "tokenizer.json only: the base's tokenizer.model is used")) << joined(coder);
  EXPECT_TRUE(contains(coder, "bfloat16 x 58, float32 x 17 (mixed")) << joined(coder);
  auto chat = bm::checkpoint_decisions(dir("Llama-2-7b-chat-hf"), dir("Llama-2-7b-hf"));
  EXPECT_TRUE(contains(chat, "do_sample=true")) << joined(chat);
  EXPECT_TRUE(contains(chat, "ignored: generation is greedy")) << joined(chat);
  EXPECT_TRUE(contains(chat, "the 2 safetensors files are read; the 2 .bin copies are ignored")) << joined(chat);
  EXPECT_FALSE(contains(chat, "vocab")) << joined(chat);
  auto nondzu = bm::checkpoint_decisions(dir("Mistral-7B-codealpaca-lora"), dir("Mistral-7B-v0.1"));
  EXPECT_TRUE(contains(nondzu, "full model despite 'lora' in its name")) << joined(nondzu);
  auto m2 = bm::checkpoint_decisions(dir("MAmmoTH2-7B"), dir("Mistral-7B-v0.1"));
  EXPECT_FALSE(contains(m2, ".bin")) << joined(m2);
}

// Bad input on the real layouts: one line naming the file and the fix, and no
// output (nor a temp directory) left behind by the merge that hit it.
TEST_F(Zoo, BadInputOnRealLayoutsFailsCleanly) {
  const std::string py = q(env("BITMERGE_TEST_PYTHON"));
  struct Case {
    std::string tag, src, setup, file_in_error, words;
  };
  std::vector<Case> cases = {
      {"missing-shard", "MAmmoTH-7B", "rm D/pytorch_model-00002-of-00003.bin", "pytorch_model-00002-of-00003.bin",
       "download every shard"},
      {"truncated-bin", "MAmmoTH-7B",
       "f=D/pytorch_model-00002-of-00003.bin; truncate -s $(( $(stat -c %s $f) / 2 )) $f",
       "pytorch_model-00002-of-00003.bin", "re-download"},
      {"truncated-safetensors", "Llama-2-7b-chat-hf",
       "f=D/model-00002-of-00002.safetensors; truncate -s $(( $(stat -c %s $f) / 2 )) $f",
       "model-00002-of-00002.safetensors", "re-download"},
      {"index-names-twice", "Llama-2-7b-chat-hf",
       "sed -i 's/\"weight_map\": {/\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\",/' "
       "D/model.safetensors.index.json",
       "model.safetensors.index.json", "twice"},
      {"tensor-in-two-bin-shards", "MAmmoTH-7B",
       py + " -c \"import torch,sys; d=sys.argv[1]; a=torch.load(d+'/pytorch_model-00001-of-00003.bin'); "
            "b=torch.load(d+'/pytorch_model-00003-of-00003.bin'); a['model.norm.weight']=b['model.norm.weight']; "
            "torch.save(a, d+'/pytorch_model-00001-of-00003.bin')\" D",
       "model.norm.weight", "appears twice"},
  };
  for (auto& c : cases) {
    const std::string d = work_ + "/bad-" + c.tag, out = work_ + "/bad-out-" + c.tag;
    auto cp = sh("rm -rf " + q(d) + " && cp -r " + q(dir(c.src)) + " " + q(d));
    ASSERT_EQ(cp.rc, 0) << cp.out;
    std::string setup = c.setup;
    for (size_t p; (p = setup.find(" D")) != std::string::npos;) setup.replace(p, 2, " " + q(d));
    for (size_t p; (p = setup.find("=D/")) != std::string::npos;) setup.replace(p, 3, "=" + d + "/");
    auto s = sh(setup);
    ASSERT_EQ(s.rc, 0) << c.tag << ": " << setup << "\n" << s.out;
    const std::string base = c.src == "MAmmoTH-7B" || c.src == "Llama-2-7b-chat-hf" ? dir("Llama-2-7b-hf") : "";
    auto r = sh(bin() + " merge --method ties --base " + q(base) + " --experts x=" + q(d) + " --output " + q(out));
    EXPECT_EQ(r.rc, 2) << c.tag << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << c.tag << "\n" << r.out;
    EXPECT_NE(r.out.find(c.file_in_error), std::string::npos) << c.tag << "\n" << r.out;
    EXPECT_NE(r.out.find(c.words), std::string::npos) << c.tag << "\n" << r.out;
    EXPECT_FALSE(bm::file_exists(out)) << c.tag;
    auto left = sh("ls -d " + q(out) + ".tmp* 2>/dev/null | wc -l");
    EXPECT_EQ(left.out, "0\n") << c.tag;
  }
}
