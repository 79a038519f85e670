"""Random-weight HF-format model (safetensors) of a LLaMA-2 / Mistral shape with few layers.

usage: make_random_model.py OUT_DIR --shape llama7b|llama13b|mistral7b|tiny [--layers N]
                            --tokenizer PATH/tokenizer.model [--device cuda|cpu] [--dtype bfloat16]

Weights ~ N(0, 0.02) (norm weights 1), created on --device (GPU: seconds for 7B
shapes), saved with save_pretrained (safetensors). tokenizer.model is copied in
(the device has no ../shared, so the path is an argument). OUT_DIR is reused
when its DONE marker matches the same arguments.
"""
import argparse
import json
import os
import shutil
import sys
import time

SHAPES = {
    # name: (hidden, full layers, heads, kv heads, intermediate, vocab, sliding window)
    "llama7b": (4096, 32, 32, 32, 11008, 32000, None),
    "llama13b": (5120, 40, 40, 40, 13824, 32000, None),
    "mistral7b": (4096, 32, 32, 8, 14336, 32000, 4096),
    "tiny": (64, 2, 4, 4, 176, 32000, None),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama7b")
    ap.add_argument("--layers", type=int, default=0, help="decoder layers (0 = the full model's)")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.model to copy into OUT_DIR")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.path.isfile(a.tokenizer):
        sys.exit(f"{a.tokenizer}: no such tokenizer.model; pass --tokenizer <data>/tokenizers/llama2/tokenizer.model")
    hidden, full_layers, heads, kv, inter, vocab, window = SHAPES[a.shape]
    layers = a.layers or full_layers
    stamp = json.dumps({"shape": a.shape, "layers": layers, "dtype": a.dtype, "seed": a.seed}, sort_keys=True)
    done = os.path.join(a.out, "DONE")
    if os.path.exists(done) and open(done).read().strip() == stamp:
        print(f"reusing {a.out} ({stamp})")
        return

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    t0 = time.time()
    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2, initializer_range=0.02)
    if a.shape == "mistral7b":
        cfg = MistralConfig(max_position_embeddings=32768, rope_theta=10000.0, sliding_window=window, **common)
        cls = MistralForCausalLM
    else:
        cfg = LlamaConfig(max_position_embeddings=4096, rope_theta=10000.0, **common)
        cls = LlamaForCausalLM
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(a.seed)
    with torch.device("meta"):
        model = cls(cfg)
    # Non-persistent buffers (rotary inv_freq) are not saved; loaders recompute them.
    model = model.to_empty(device=a.device).to(dtype)
    gen = torch.Generator(device=a.device).manual_seed(a.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    model.save_pretrained(a.out, safe_serialization=True, max_shard_size="5GB")
    shutil.copyfile(a.tokenizer, os.path.join(a.out, "tokenizer.model"))
    with open(done, "w") as f:
        f.write(stamp + "\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: {a.shape} x {layers} layers, {n / 1e9:.3f} B params, {a.dtype}, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
