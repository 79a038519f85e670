#!/usr/bin/env python3
"""Replica zoo: the paper's twelve Hugging Face checkpoints as they really ship,
at tiny shapes (issue 15).

    make_zoo.py OUT [--tokenizers DIR] [--repos a/b,c/d] [--hub-layout]

writes OUT/<name> for every repo <org>/<name> (the directory
$BITMERGE_MODELS_DIR/<name> that configs/families/*.toml resolve to), with the
repo's layout: weight file names, shard count and index files, .bin only vs
safetensors + .bin, stored dtypes (mixed included), vocab 32001 with
added_tokens.json and config pad_token_id as the real config says, tokenizer
files present or absent, pickled non-parameter buffers (rotary_emb.inv_freq)
in old .bin files, generation_config.json that samples by default.
With --hub-layout, OUT/<org>/<name> instead (what tests/fetch/hub_server.py
serves as the hub).

The real tokenizer.model files are read from --tokenizers (default
$BITMERGE_DATA_DIR/tokenizers); the zoo is written outside the repository.
Tiny shapes, the real tensor names; experts are base + small deltas
(Nondzu = Mistral-Instruct + a code delta, as the real repo was tuned from
Instruct). Deterministic: the same bytes on every run (fixed seeds).
Facts marked (?) in the issue are taken as the issue's table says.
"""
import argparse
import json
import os
import shutil
import sys
from collections import OrderedDict

import torch
from safetensors.torch import save_file

# ---------------------------------------------------------------- shapes
# Tiny, but the 13B family is another shape than the 7B one (so an expert of
# one family against the other's base is a shape mismatch, as in reality), and
# deep enough for the experiments' router (router.layer = 8).
SHAPES = {
    "llama7": dict(hidden_size=16, intermediate_size=32, num_hidden_layers=8, num_attention_heads=4,
                   num_key_value_heads=4),
    "llama13": dict(hidden_size=24, intermediate_size=48, num_hidden_layers=10, num_attention_heads=4,
                    num_key_value_heads=4),
    "mistral": dict(hidden_size=16, intermediate_size=48, num_hidden_layers=8, num_attention_heads=4,
                    num_key_value_heads=2),
}
VOCAB = 32000

F16, BF16, F32 = torch.float16, torch.bfloat16, torch.float32
DTYPE_NAME = {F16: "float16", BF16: "bfloat16", F32: "float32"}

LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
MISTRAL_INST_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")

# ---------------------------------------------------------------- the twelve repos
# weights: "st+bin" (safetensors and .bin, both sharded), "bin" (.bin only), "st" (safetensors only)
# tok: which tokenizer files ship: "model" (tokenizer.model), "json" (tokenizer.json)
# parent: the model this one is tuned from (None = a pretrained base)
REPOS = OrderedDict()


def repo(rid, **kw):
    REPOS[rid] = kw


repo("meta-llama/Llama-2-7b-hf", shape="llama7", tok_src="llama2", parent=None, seed=7, weights="st+bin", shards=2,
     dtype=F16, vocab=32000, tok=("model", "json"), gen="base", gated=True)
repo("meta-llama/Llama-2-7b-chat-hf", shape="llama7", tok_src="llama2", parent="meta-llama/Llama-2-7b-hf", seed=71,
     weights="st+bin", shards=2, dtype=F16, vocab=32000, tok=("model", "json"), gen="chat",
     chat_template=LLAMA2_CHAT_TEMPLATE, gated=True)
repo("TIGER-Lab/MAmmoTH-7B", shape="llama7", tok_src="llama2", parent="meta-llama/Llama-2-7b-hf", seed=72,
     weights="bin", shards=3, dtype=F32, vocab=32001, pad_token_id=0, added_tokens={"[PAD]": 32000},
     tok=("model",), gen="old", old_config=True, inv_freq=True)
repo("mrm8488/llama-2-coder-7b", shape="llama7", tok_src="llama2", parent="meta-llama/Llama-2-7b-hf", seed=73,
     weights="bin", shards=2, dtype=BF16, fp32_norms=True, vocab=32000, tok=("json",), gen="old", inv_freq=True)
repo("meta-llama/Llama-2-13b-hf", shape="llama13", tok_src="llama2", parent=None, seed=13, weights="st+bin",
     shards=3, dtype=F16, vocab=32000, tok=("model", "json"), gen="base", gated=True)
repo("meta-llama/Llama-2-13b-chat-hf", shape="llama13", tok_src="llama2", parent="meta-llama/Llama-2-13b-hf",
     seed=131, weights="st+bin", shards=3, dtype=F16, vocab=32000, tok=("model", "json"), gen="chat",
     chat_template=LLAMA2_CHAT_TEMPLATE, gated=True)
repo("TIGER-Lab/MAmmoTH-13B", shape="llama13", tok_src="llama2", parent="meta-llama/Llama-2-13b-hf", seed=132,
     weights="bin", shards=6, dtype=F32, vocab=32001, pad_token_id=0, added_tokens={"[PAD]": 32000},
     tok=("model",), gen="old", old_config=True, inv_freq=True)
repo("emre/llama-2-13b-code-chat", shape="llama13", tok_src="llama2", parent="meta-llama/Llama-2-13b-hf", seed=133,
     weights="bin", shards=3, dtype=F16, vocab=32000, tok=("json",), gen="old", inv_freq=True)
repo("mistralai/Mistral-7B-v0.1", shape="mistral", tok_src="mistral-7b-v0.1", parent=None, seed=5, weights="st+bin",
     shards=2, dtype=BF16, vocab=32000, tok=("model", "json"), gen="base")
repo("mistralai/Mistral-7B-Instruct-v0.1", shape="mistral", tok_src="mistral-7b-v0.1",
     parent="mistralai/Mistral-7B-v0.1", seed=51, weights="st+bin", shards=2, dtype=BF16, vocab=32000,
     tok=("model", "json"), gen="base", chat_template=MISTRAL_INST_TEMPLATE)
repo("TIGER-Lab/MAmmoTH2-7B", shape="mistral", tok_src="mistral-7b-v0.1", parent="mistralai/Mistral-7B-v0.1",
     seed=52, weights="st", shards=3, dtype=BF16, vocab=32000, tok=("model",), gen="base", use_cache=False)
# Tuned from Instruct, then merged: a full model despite its name (no adapter_config.json).
repo("Nondzu/Mistral-7B-codealpaca-lora", shape="mistral", tok_src="mistral-7b-v0.1",
     parent="mistralai/Mistral-7B-Instruct-v0.1", seed=53, weights="st+bin", shards=2, dtype=F16, vocab=32000,
     tok=("model",), gen="base")

FAMILY_OF_SHAPE = {"llama7": "llama", "llama13": "llama", "mistral": "mistral"}


# ---------------------------------------------------------------- weights
def tensor_names(shape, n_layers):
    names = ["model.embed_tokens.weight"]
    for i in range(n_layers):
        p = f"model.layers.{i}."
        names += [p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight",
                  p + "self_attn.o_proj.weight", p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight",
                  p + "mlp.down_proj.weight", p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
    names += ["model.norm.weight", "lm_head.weight"]
    return names


def tensor_shape(name, s, vocab):
    H, I = s["hidden_size"], s["intermediate_size"]
    hd = H // s["num_attention_heads"]
    kv = s["num_key_value_heads"] * hd
    if "embed_tokens" in name or name == "lm_head.weight":
        return (vocab, H)
    if "norm" in name:
        return (H,)
    if "q_proj" in name:
        return (H, H)
    if "k_proj" in name or "v_proj" in name:
        return (kv, H)
    if "o_proj" in name:
        return (H, H)
    if "gate_proj" in name or "up_proj" in name:
        return (I, H)
    if "down_proj" in name:
        return (H, I)
    raise ValueError(name)


_cache = {}


def weights_fp32(rid):
    """The model's weights in float32 (before the repo's storage dtype)."""
    if rid in _cache:
        return _cache[rid]
    r = REPOS[rid]
    s = SHAPES[r["shape"]]
    g = torch.Generator().manual_seed(r["seed"])
    out = OrderedDict()
    if r["parent"] is None:
        for n in tensor_names(s, s["num_hidden_layers"]):
            sh = tensor_shape(n, s, VOCAB)
            if "norm" in n:
                t = 1.0 + 0.05 * torch.randn(sh, generator=g)
            else:
                t = 0.5 * torch.randn(sh, generator=g) / (sh[-1] ** 0.5) * 4
            out[n] = t.to(r["dtype"]).to(F32)  # what the base stores
    else:
        parent = weights_fp32(r["parent"])
        for n, p in parent.items():
            # relative delta ~ 3% of the weights' scale (large enough to survive bf16 storage)
            d = 0.03 * p.abs().mean() * torch.randn(p.shape, generator=g)
            out[n] = p + d
        if r["vocab"] > VOCAB:  # the added [PAD] row, trained from scratch
            for n in ("model.embed_tokens.weight", "lm_head.weight"):
                extra = 0.02 * torch.randn((r["vocab"] - VOCAB, out[n].shape[1]), generator=g)
                out[n] = torch.cat([out[n], extra], 0)
    _cache[rid] = out
    return out


def stored(rid):
    r = REPOS[rid]
    out = OrderedDict()
    for n, t in weights_fp32(rid).items():
        dt = F32 if (r.get("fp32_norms") and "norm" in n) else r["dtype"]
        out[n] = t.to(dt).contiguous()
    return out


def shard_split(names, k):
    """Contiguous split of the names into k non-empty groups (file order as HF writes them)."""
    k = min(k, len(names))
    per = [len(names) // k + (1 if i < len(names) % k else 0) for i in range(k)]
    groups, at = [], 0
    for c in per:
        groups.append(names[at:at + c])
        at += c
    return groups


def inv_freq(s):
    hd = s["hidden_size"] // s["num_attention_heads"]
    return 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))


def write_weights(d, rid):
    r = REPOS[rid]
    s = SHAPES[r["shape"]]
    sd = stored(rid)
    names = list(sd.keys())
    groups = shard_split(names, r["shards"])
    k = len(groups)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    if r["weights"] in ("st+bin", "st"):
        wm = OrderedDict()
        for i, g in enumerate(groups):
            fn = f"model-{i + 1:05d}-of-{k:05d}.safetensors"
            save_file({n: sd[n] for n in g}, os.path.join(d, fn), metadata={"format": "pt"})
            for n in g:
                wm[n] = fn
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
    if r["weights"] in ("st+bin", "bin"):
        wm = OrderedDict()
        for i, g in enumerate(groups):
            fn = f"pytorch_model-{i + 1:05d}-of-{k:05d}.bin"
            part = OrderedDict()
            for n in g:
                part[n] = sd[n]
                # Old transformers pickled RoPE's buffer after each layer's o_proj.
                if r.get("inv_freq") and n.endswith("self_attn.o_proj.weight"):
                    part[n.replace("o_proj.weight", "rotary_emb.inv_freq")] = inv_freq(s)
            torch.save(part, os.path.join(d, fn))
            for n in part:
                wm[n] = fn
        with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)


# ---------------------------------------------------------------- config, tokenizer, generation
def config(rid):
    r = REPOS[rid]
    s = SHAPES[r["shape"]]
    fam = FAMILY_OF_SHAPE[r["shape"]]
    c = OrderedDict()
    c["_name_or_path"] = rid
    c["architectures"] = ["MistralForCausalLM" if fam == "mistral" else "LlamaForCausalLM"]
    c["bos_token_id"] = 1
    c["eos_token_id"] = 2
    c["hidden_act"] = "silu"
    c["hidden_size"] = s["hidden_size"]
    c["initializer_range"] = 0.02
    c["intermediate_size"] = s["intermediate_size"]
    c["max_position_embeddings"] = 32768 if fam == "mistral" else (2048 if r.get("old_config") else 4096)
    c["model_type"] = fam
    c["num_attention_heads"] = s["num_attention_heads"]
    c["num_hidden_layers"] = s["num_hidden_layers"]
    if not r.get("old_config"):  # configs from transformers < 4.31 have no num_key_value_heads / rope_theta
        c["num_key_value_heads"] = s["num_key_value_heads"]
    if "pad_token_id" in r:
        c["pad_token_id"] = r["pad_token_id"]
    if fam == "llama" and not r.get("old_config"):
        c["pretraining_tp"] = 1
    c["rms_norm_eps"] = 1e-5 if fam == "llama" else 1e-5
    if fam == "mistral":
        c["rope_theta"] = 10000.0
        c["sliding_window"] = 4096
    elif not r.get("old_config"):
        c["rope_scaling"] = None
    c["tie_word_embeddings"] = False
    c["torch_dtype"] = DTYPE_NAME[r["dtype"]]
    c["transformers_version"] = "4.28.1" if r.get("old_config") else "4.34.0"
    c["use_cache"] = r.get("use_cache", True)
    c["vocab_size"] = r["vocab"]
    return c


def generation_config(rid):
    r = REPOS[rid]
    g = OrderedDict(_from_model_config=r["gen"] == "old", bos_token_id=1, eos_token_id=2)
    if r["gen"] == "chat":  # Llama-2-chat: samples by default
        g.update(do_sample=True, max_length=4096, pad_token_id=0, temperature=0.6, top_p=0.9)
    elif r["gen"] == "base" and rid.startswith("meta-llama"):
        g.update(max_length=4096, pad_token_id=0, temperature=0.9, top_p=0.6, do_sample=True)
    elif "pad_token_id" in r:
        g["pad_token_id"] = r["pad_token_id"]
    g["transformers_version"] = "4.28.1" if r["gen"] == "old" else "4.34.0"
    return g


_tok_json = {}


def tokenizer_json(tok_src_path):
    """tokenizer.json as transformers converts the sentencepiece model (cached per source)."""
    if tok_src_path not in _tok_json:
        import tempfile
        from transformers import LlamaTokenizer
        src = tempfile.mkdtemp(prefix="zoo-tok-")
        shutil.copy(tok_src_path, os.path.join(src, "tokenizer.model"))
        t = LlamaTokenizer.from_pretrained(src)
        t.save_pretrained(src)
        with open(os.path.join(src, "tokenizer.json")) as f:
            j = json.load(f, object_pairs_hook=OrderedDict)
        shutil.rmtree(src)
        # The conversion keeps the model (vocab, merges) but not the pipeline the
        # 2023 repos ship (Llama-2's and Mistral-7B-v0.1's tokenizer.json alike):
        # "▁" prepended by the normalizer to every stretch between special tokens
        # ("<s>[INST]" -> <s> "▁[" ...), and a post_processor that adds <s>, so
        # that the tokenizer's default adds BOS as add_bos_token: true says.
        j["normalizer"] = OrderedDict(type="Sequence", normalizers=[
            OrderedDict(type="Prepend", prepend="\u2581"),
            OrderedDict(type="Replace", pattern={"String": " "}, content="\u2581")])
        j["pre_tokenizer"] = None
        bos = lambda t: {"SpecialToken": {"id": "<s>", "type_id": t}}
        seq = lambda x, t: {"Sequence": {"id": x, "type_id": t}}
        j["post_processor"] = OrderedDict(
            type="TemplateProcessing", single=[bos(0), seq("A", 0)], pair=[bos(0), seq("A", 0), bos(1), seq("B", 1)],
            special_tokens={"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}})
        j["decoder"] = OrderedDict(type="Sequence", decoders=[
            OrderedDict(type="Replace", pattern={"String": "\u2581"}, content=" "), {"type": "ByteFallback"},
            {"type": "Fuse"}, OrderedDict(type="Strip", content=" ", start=1, stop=0)])
        _tok_json[tok_src_path] = json.dumps(j, indent=2)
    return _tok_json[tok_src_path]


def write_tokenizer(d, rid, tokenizers_dir):
    r = REPOS[rid]
    src = os.path.join(tokenizers_dir, r["tok_src"], "tokenizer.model")
    if "model" in r["tok"]:
        shutil.copy(src, os.path.join(d, "tokenizer.model"))
        os.chmod(os.path.join(d, "tokenizer.model"), 0o644)
    if "json" in r["tok"]:
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            f.write(tokenizer_json(src))
    tc = OrderedDict(add_bos_token=True, add_eos_token=False, bos_token="<s>", eos_token="</s>",
                     clean_up_tokenization_spaces=False, legacy=False if r["shape"] == "mistral" else True,
                     model_max_length=1000000000000000019884624838656, pad_token=None, sp_model_kwargs={},
                     tokenizer_class="LlamaTokenizer", unk_token="<unk>")
    if r.get("added_tokens"):
        tc["pad_token"] = "[PAD]"
        with open(os.path.join(d, "added_tokens.json"), "w") as f:
            json.dump(r["added_tokens"], f, indent=2)
    if r.get("chat_template"):
        tc["chat_template"] = r["chat_template"]
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
    stm = OrderedDict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if r.get("added_tokens"):
        stm["pad_token"] = "[PAD]"
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)


def write_repo(out, rid, tokenizers_dir, hub_layout):
    d = os.path.join(out, rid) if hub_layout else os.path.join(out, rid.split("/", 1)[1])
    tmp = d + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write_weights(tmp, rid)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config(rid), f, indent=2)
    with open(os.path.join(tmp, "generation_config.json"), "w") as f:
        json.dump(generation_config(rid), f, indent=2)
    write_tokenizer(tmp, rid, tokenizers_dir)
    with open(os.path.join(tmp, "README.md"), "w") as f:
        f.write(f"# {rid} (bitmerge replica zoo: tiny shapes, the real layout)\n")
    shutil.rmtree(d, ignore_errors=True)
    os.rename(tmp, d)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tokenizers", default=os.path.join(os.environ.get("BITMERGE_DATA_DIR", ""), "tokenizers"))
    ap.add_argument("--repos", default="", help="comma list of repo ids (default: all twelve)")
    ap.add_argument("--hub-layout", action="store_true", help="OUT/<org>/<name> instead of OUT/<name>")
    ap.add_argument("--list", action="store_true", help="print the repo ids and exit")
    a = ap.parse_args()
    if a.list:
        print("\n".join(REPOS))
        return 0
    for t in ("llama2", "mistral-7b-v0.1"):
        p = os.path.join(a.tokenizers, t, "tokenizer.model")
        if not os.path.isfile(p):
            sys.exit(f"{p}: missing; pass --tokenizers DIR (shared/data/tokenizers) or set BITMERGE_DATA_DIR")
    ids = [x for x in a.repos.split(",") if x] or list(REPOS)
    for rid in ids:
        if rid not in REPOS:
            sys.exit(f"--repos: unknown repo '{rid}'; known: {', '.join(REPOS)}")
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    for rid in ids:
        print(write_repo(a.out, rid, a.tokenizers, a.hub_layout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
