"""Test-time oracle for tests/io (run with BITMERGE_TEST_PYTHON).

  make DIR      writes reference checkpoints with the real libraries
                (safetensors, torch.save, PEFT, transformers) into DIR, and
                next to each the expected tensors as raw bytes in
                DIR/expect/<case>/<i>.raw + DIR/expect/<case>/index.json
                (name, dtype, shape), a format independent of the readers
                under test.
  logits MODEL_DIR OUT  loads MODEL_DIR with transformers and writes the fp32
                logits for fixed token ids to OUT (raw float32).
"""
import collections
import json
import os
import sys

import torch

IDS = [[1, 5, 9, 2, 33, 17, 60, 4], [1, 44, 3, 3, 12, 0, 7, 61]]


def dump_expect(root, case, named):
    d = os.path.join(root, "expect", case)
    os.makedirs(d, exist_ok=True)
    index = []
    for i, (name, t) in enumerate(named):
        t = t.detach().contiguous()
        t.view(-1).view(torch.uint8).numpy().tofile(os.path.join(d, f"{i}.raw")) if t.numel() else open(
            os.path.join(d, f"{i}.raw"), "wb").close()
        index.append({"name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)})
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)


def tiny_llama_config():
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                       rms_norm_eps=1e-5, tie_word_embeddings=False)


def make(root):
    from safetensors.torch import save_file
    torch.manual_seed(1234)
    os.makedirs(root, exist_ok=True)

    # 1. Sharded safetensors written the way HF does (save_file per shard + index).
    tensors = collections.OrderedDict()
    tensors["w.f32"] = torch.randn(7, 5)
    tensors["w.f16"] = torch.randn(3, 4, 2).half()
    tensors["w.bf16"] = torch.randn(11).bfloat16()
    tensors["w.scalar"] = torch.tensor(3.5)
    tensors["w.i64"] = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    tensors["w.big"] = torch.randn(64, 33).bfloat16()
    d = os.path.join(root, "st_sharded")
    os.makedirs(d)
    names = list(tensors)
    shards = [names[:3], names[3:5], names[5:]]
    wm = {}
    for i, group in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: tensors[n] for n in group}, os.path.join(d, fn), metadata={"format": "pt"})
        for n in group:
            wm[n] = fn
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f)
    dump_expect(root, "st_sharded", list(tensors.items()))

    # 2. torch.save .bin: a plain dict with a view sharing storage and a Parameter.
    base = torch.randn(40)
    plain = {"a.half": torch.randn(6, 3).half(), "a.bf16": torch.randn(5, 2).bfloat16(),
             "a.view": base[4:16].view(3, 4), "a.base": base,
             "a.param": torch.nn.Parameter(torch.randn(2, 3)), "a.transposed": torch.randn(4, 3).t(),
             "a.bool": torch.tensor([True, False, True])}
    d = os.path.join(root, "bin_plain")
    os.makedirs(d)
    torch.save(plain, os.path.join(d, "pytorch_model.bin"))
    dump_expect(root, "bin_plain", list(plain.items()))
    # ... and the same with pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL).
    d = os.path.join(root, "bin_proto4")
    os.makedirs(d)
    torch.save(plain, os.path.join(d, "pytorch_model.bin"), pickle_protocol=4)

    # 3. model.state_dict() is an OrderedDict with _metadata: what older HF
    #    checkpoints hold; plus the RoPE buffer old LLaMA .bin files carry.
    torch.manual_seed(5)
    m = torch.nn.Sequential(collections.OrderedDict(
        [("embed", torch.nn.Embedding(10, 4)), ("proj", torch.nn.Linear(4, 6)), ("norm", torch.nn.LayerNorm(6))]))
    sd = m.state_dict()
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.randn(2)
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    d = os.path.join(root, "bin_ordered")
    os.makedirs(d)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    dump_expect(root, "bin_ordered", [(k, v) for k, v in sd.items() if not k.endswith("inv_freq")])

    # 4. A tiny LLaMA: safetensors, sharded .bin, a PEFT LoRA adapter, logits.
    from transformers import LlamaForCausalLM
    torch.manual_seed(7)
    model = LlamaForCausalLM(tiny_llama_config()).eval()
    llama = os.path.join(root, "llama")
    model.save_pretrained(llama, safe_serialization=True)
    with torch.no_grad():
        model(torch.tensor(IDS)).logits.float().numpy().tofile(os.path.join(root, "llama_logits.raw"))
    dump_expect(root, "llama", list(model.state_dict().items()))
    # transformers 5 no longer writes .bin; shard it the way transformers 4 did.
    llama_bin = os.path.join(root, "llama_bin")
    os.makedirs(llama_bin)
    model.config.save_pretrained(llama_bin)
    sd = model.state_dict()
    names = list(sd)
    groups = [names[:7], names[7:]]
    wm = {}
    for i, group in enumerate(groups):
        fn = f"pytorch_model-{i + 1:05d}-of-{len(groups):05d}.bin"
        torch.save({n: sd[n].contiguous() for n in group}, os.path.join(llama_bin, fn))
        wm.update({n: fn for n in group})
    with open(os.path.join(llama_bin, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
                   "weight_map": wm}, f)

    from peft import LoraConfig, get_peft_model
    torch.manual_seed(11)
    base_model = LlamaForCausalLM.from_pretrained(llama).eval()
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0,
                     bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(base_model, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:  # PEFT initialises B to zero; make the fold visible
                p.normal_(0, 0.5)
    lora_st = os.path.join(root, "lora_st")
    peft_model.save_pretrained(lora_st, safe_serialization=True)
    lora_bin = os.path.join(root, "lora_bin")
    peft_model.save_pretrained(lora_bin, safe_serialization=False)
    for ad in (lora_st, lora_bin):  # point the adapter at the local base
        p = os.path.join(ad, "adapter_config.json")
        c = json.load(open(p))
        c["base_model_name_or_path"] = llama
        json.dump(c, open(p, "w"))
    merged = peft_model.merge_and_unload()
    dump_expect(root, "lora_merged", list(merged.state_dict().items()))

    # 5. A hand-made adapter with known small-integer A and B (exact in fp32).
    known = os.path.join(root, "lora_known")
    os.makedirs(known)
    A = torch.tensor([[1., 0., 2.] + [0.] * 29, [0., 1., -1.] + [0.] * 29])  # [r=2, in=32]
    B = torch.zeros(32, 2)
    B[0, 0], B[1, 1], B[5, 0] = 1.0, 2.0, -3.0  # [out=32, r=2]
    save_file({"base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight": A,
               "base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight": B},
              os.path.join(known, "adapter_model.safetensors"), metadata={"format": "pt"})
    json.dump({"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["o_proj"],
               "base_model_name_or_path": llama}, open(os.path.join(known, "adapter_config.json"), "w"))


def logits(model_dir, out):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        model(torch.tensor(IDS)).logits.float().numpy().tofile(out)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: io_oracle.py make DIR | logits MODEL_DIR OUT")
