"""A LLaMA-2-7B-shaped family for `bitmerge inspect --task-vectors` at real shape.

usage: make_realshape.py OUT_DIR [--layers 2] [--dtype float16]

Writes OUT_DIR/{base,chat,math}/ (config.json + model.safetensors) with the
LLaMA-2-7B widths (vocab 32000, hidden 4096, intermediate 11008, 32 heads)
and --layers layers (2 by default: 0.67 G parameters, 1.3 GB per model in
fp16). The base is N(0, 0.02) (norms: 1 + N(0, 0.02)); each expert is the
base plus a small task vector 2e-4 * (0.5 * shared + own) with shared and own
N(0, 1), and 10% of the entries left exactly at the base's value. Expected
statistics, computed before the fp16 rounding: relative norm about
0.0112 * sqrt(0.9), cosine between the experts about 0.25 * 0.9 / 1.25 = 0.18
(less after rounding). This is a shape and speed test, not a model of real
fine-tunes: no numbers from it belong next to published ones.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def shapes(layers):
    H, I, V = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    yield "model.embed_tokens.weight", (V, H)
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{n}.weight", (H, H)
        yield p + "mlp.gate_proj.weight", (I, H)
        yield p + "mlp.up_proj.weight", (I, H)
        yield p + "mlp.down_proj.weight", (H, I)
        yield p + "input_layernorm.weight", (H,)
        yield p + "post_attention_layernorm.weight", (H,)
    yield "model.norm.weight", (H,)
    yield "lm_head.weight", (V, H)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    experts = ["chat", "math"]
    models = {m: {} for m in ["base"] + experts}
    g = torch.Generator().manual_seed(0)
    for name, shape in shapes(a.layers):
        base = 0.02 * torch.randn(shape, generator=g)
        if len(shape) == 1:
            base += 1.0
        shared = torch.randn(shape, generator=g)
        models["base"][name] = base.to(dtype)
        for e in experts:
            delta = 2e-4 * (0.5 * shared + torch.randn(shape, generator=g))
            delta *= (torch.rand(shape, generator=g) >= 0.1).to(delta.dtype)
            models[e][name] = (base + delta).to(dtype)
        del base, shared
    for m, tensors in models.items():
        d = os.path.join(a.out, m)
        os.makedirs(d, exist_ok=True)
        cfg = dict(CONFIG, num_hidden_layers=a.layers, torch_dtype=a.dtype)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        print(d, sum(t.numel() for t in tensors.values()), "parameters")


if __name__ == "__main__":
    main()
